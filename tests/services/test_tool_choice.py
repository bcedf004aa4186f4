from __future__ import annotations

from typing import Any

import pytest

from llmapi.errors import InvalidRequestError, UnsupportedError
from llmapi.protocol.chat import ChatCompletionRequest
from llmapi.services.tool_choice import tool_plan

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ADD = {"type": "function", "function": {"name": "add"}}


def request(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


def test_tools_default_to_auto_and_nothing_is_forced() -> None:
    plan = tool_plan(request(tools=[WEATHER, ADD]))
    assert plan.mode == "auto" and plan.forced == () and plan.parallel
    assert plan.names == {"get_weather", "add"}
    assert plan.tools[0].parameters == WEATHER["function"]["parameters"]  # type: ignore[index]


def test_none_offers_no_tools() -> None:
    plan = tool_plan(request(tools=[WEATHER], tool_choice="none"))
    assert plan.tools == () and plan.mode == "none"
    assert tool_plan(request()).tools == ()


def test_required_forces_any_tool_and_a_named_function_forces_one_call_of_it() -> None:
    required = tool_plan(request(tools=[WEATHER, ADD], tool_choice="required", parallel_tool_calls=False))
    assert [t.name for t in required.forced] == ["get_weather", "add"] and not required.parallel
    named = tool_plan(
        request(tools=[WEATHER, ADD], tool_choice={"type": "function", "function": {"name": "add"}})
    )
    assert [t.name for t in named.forced] == ["add"] and not named.parallel
    assert len(named.tools) == 2  # the prompt still lists every tool


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "add"}}},
            "tool_choice",
        ),
        ({"tools": [WEATHER], "tool_choice": {"type": "function"}}, "tool_choice"),
        ({"tools": [{"type": "function", "function": {"name": "no spaces"}}]}, "tools.0.function.name"),
        ({"tools": [{"type": "function"}]}, "tools.0.function"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]},
            "tools.0.function.parameters",
        ),
    ],
)
def test_a_faulty_tool_or_choice_is_a_400_naming_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        tool_plan(request(**fields))
    assert raised.value.param == param


def test_tools_other_than_functions_are_unsupported() -> None:
    with pytest.raises(UnsupportedError) as raised:
        tool_plan(request(tools=[WEATHER, {"type": "web_search"}]))
    assert raised.value.param == "tools.1.type"
