from __future__ import annotations

from pathlib import Path
from typing import Any

import llguidance
import llguidance.hf
import pytest
from transformers import PreTrainedTokenizerFast

import llmapi.backends.local
from llmapi.backends.base import FunctionTool
from llmapi.engine.constraint import Constraint, grammar_of
from llmapi.errors import UnsupportedError
from llmapi.services.tool_choice import NO_TOOLS, ToolPlan
from llmapi.services.tool_grammar import forced_calls

ASSETS = Path(llmapi.backends.local.__file__).parent / "assets" / "gpt2-124m-random"
WEATHER = FunctionTool(
    name="get_weather",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city"],
    },
)
ADD = FunctionTool(name="add")
PARIS = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
EMPTY = '<tool_call>\n{"name": "add", "arguments": {}}\n</tool_call>'


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return PreTrainedTokenizerFast.from_pretrained(ASSETS)


def matches(tokenizer: Any, constraint: Constraint, text: str) -> bool:
    """Whether the grammar takes `text` token by token and is complete after it."""
    lltokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=len(tokenizer))
    matcher = llguidance.LLMatcher(lltokenizer, grammar_of(constraint), log_level=0)
    return bool(matcher.consume_tokens(tokenizer.encode(text))) and matcher.is_accepting()


def test_nothing_forced_is_no_constraint() -> None:
    assert forced_calls(NO_TOOLS) is None
    assert forced_calls(ToolPlan(tools=(WEATHER,), mode="auto", forced=(), parallel=True)) is None


def test_a_named_function_takes_one_call_of_it_with_arguments_valid_for_its_schema(tokenizer: Any) -> None:
    constraint = forced_calls(
        ToolPlan(tools=(WEATHER, ADD), mode="function", forced=(WEATHER,), parallel=False)
    )
    assert constraint is not None and constraint.kind == "lark"
    assert matches(tokenizer, constraint, PARIS)
    assert matches(tokenizer, constraint, PARIS.replace('"Paris"}', '"Paris", "unit": "c"}'))
    assert not matches(tokenizer, constraint, PARIS.replace("city", "town"))  # a required property missing
    assert not matches(
        tokenizer, constraint, PARIS.replace('"Paris"}', '"Paris", "unit": "k"}')
    )  # not in enum
    assert not matches(tokenizer, constraint, EMPTY)  # another function
    assert not matches(tokenizer, constraint, f"{PARIS}\n{PARIS}")  # a second call
    assert not matches(tokenizer, constraint, f"Sure. {PARIS}")  # text


def test_required_takes_any_offered_function_and_parallel_calls_when_allowed(tokenizer: Any) -> None:
    parallel = forced_calls(
        ToolPlan(tools=(WEATHER, ADD), mode="required", forced=(WEATHER, ADD), parallel=True)
    )
    assert parallel is not None
    assert matches(tokenizer, parallel, EMPTY)
    assert matches(tokenizer, parallel, f"{PARIS}\n{EMPTY}")
    assert not matches(tokenizer, parallel, EMPTY.replace("{}", '{"x": 1}'))  # no parameters: an empty object
    single = forced_calls(
        ToolPlan(tools=(WEATHER, ADD), mode="required", forced=(WEATHER, ADD), parallel=False)
    )
    assert single is not None and not matches(tokenizer, single, f"{PARIS}\n{EMPTY}")


def test_parameters_the_grammar_engine_cannot_enforce_are_a_400_naming_the_function() -> None:
    odd = FunctionTool(name="pick", parameters={"type": "array", "uniqueItems": True})
    with pytest.raises(UnsupportedError) as raised:
        forced_calls(ToolPlan(tools=(WEATHER, odd), mode="required", forced=(WEATHER, odd), parallel=True))
    assert raised.value.param == "tools.1.function.parameters"
    assert "pick" in str(raised.value) and "uniqueItems" in str(raised.value)
