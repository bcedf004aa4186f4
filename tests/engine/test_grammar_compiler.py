from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from llmapi.engine.constraint import Constraint
from llmapi.engine.errors import ConstraintError
from llmapi.engine.grammar_compiler import GrammarCompiler

ASSETS = "src/llmapi/backends/local/assets/gpt2-124m-random"
TWO_DIGITS = Constraint("json_schema", '{"type": "integer", "minimum": 0, "maximum": 99}')


@pytest.fixture(scope="module")
def compiler() -> GrammarCompiler:
    tokenizer = AutoTokenizer.from_pretrained(ASSETS)
    return GrammarCompiler(tokenizer, vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id)


def test_a_grammar_is_compiled_once_and_each_sequence_gets_its_own_state(compiler: GrammarCompiler) -> None:
    tokenizer = compiler._tokenizer
    assert not compiler.is_prepared(TWO_DIGITS)
    compiler.prepare(TWO_DIGITS)
    assert compiler.is_prepared(TWO_DIGITS)
    first, second = compiler.matcher(TWO_DIGITS), compiler.matcher(TWO_DIGITS)
    assert first.accept(tokenizer.encode("7")[0])
    assert not first.is_finished  # "7" is whole, but "75" would be too: end-of-text or another digit
    assert first.accept(tokenizer.encode("5")[0])
    assert first.is_finished  # nothing may follow "75"
    assert not second.is_finished
    assert not second.accept(tokenizer.encode("x")[0])
    assert second.error


def test_an_unenforceable_constraint_raises(compiler: GrammarCompiler) -> None:
    with pytest.raises(ConstraintError, match="uniqueItems"):
        compiler.prepare(Constraint("json_schema", '{"type": "array", "uniqueItems": true}'))
