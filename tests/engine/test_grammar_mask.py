from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoTokenizer

from llmapi.engine.constraint import Constraint
from llmapi.engine.grammar_compiler import GrammarCompiler
from llmapi.engine.grammar_mask import GrammarMask

ASSETS = "src/llmapi/backends/local/assets/gpt2-124m-random"


@pytest.fixture(scope="module")
def compiler() -> GrammarCompiler:
    tokenizer = AutoTokenizer.from_pretrained(ASSETS)
    return GrammarCompiler(tokenizer, vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id)


def test_only_constrained_rows_are_masked(compiler: GrammarCompiler) -> None:
    tokenizer = compiler._tokenizer
    enum = compiler.matcher(Constraint("json_schema", json.dumps({"enum": ["yes", "no"]})))
    digit = compiler.matcher(Constraint("json_schema", '{"type": "integer", "minimum": 0, "maximum": 9}'))
    logits = torch.randn(4, compiler.vocab_size)
    masked = GrammarMask()(logits, [None, enum, None, digit])
    assert torch.equal(masked[0], logits[0]) and torch.equal(masked[2], logits[2])
    allowed_enum = {tokenizer.decode([t]) for t in torch.nonzero(masked[1].isfinite()).flatten().tolist()}
    assert allowed_enum and all('"yes"'.startswith(s) or '"no"'.startswith(s) for s in allowed_enum)
    allowed_digit = {tokenizer.decode([t]) for t in torch.nonzero(masked[3].isfinite()).flatten().tolist()}
    assert allowed_digit == {str(d) for d in range(10)}


def test_logits_narrower_than_the_tokenizer_are_masked_on_their_own_width(compiler: GrammarCompiler) -> None:
    matcher = compiler.matcher(Constraint("json_schema", '{"type": "integer", "minimum": 0, "maximum": 9}'))
    masked = GrammarMask()(torch.zeros(1, 100), [matcher])
    assert masked.shape == (1, 100)
    assert 0 < int(masked.isfinite().sum()) <= 10


def test_a_batch_without_grammars_is_returned_as_it_is(compiler: GrammarCompiler) -> None:
    logits = torch.randn(3, compiler.vocab_size)
    assert GrammarMask()(logits, [None, None, None]) is logits
