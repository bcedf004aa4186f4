"""Tool calls end to end: the real default chat model (SmolLM2-135M-Instruct) behind `llmapi serve`, through
the openai SDK. Greedy throughout, so what the model says is what it says every time."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest
from tests.real_model import REAL_MODEL

WEATHER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "The city name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given city",
        "parameters": WEATHER_PARAMETERS,
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The local time in a time zone",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string"}},
            "required": ["zone"],
            "additionalProperties": False,
        },
    },
}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
LONDON_CALL = {
    "id": "call_london",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "London", "unit": "celsius"}'},
}
# One call shown in the history: the 135M model then calls the tool by itself (auto) for the next question.
ONE_SHOT = [
    {"role": "user", "content": "What is the weather in London?"},
    {"role": "assistant", "content": None, "tool_calls": [LONDON_CALL]},
    {"role": "user", "content": "What is the weather in Tokyo?"},
]


def chat(client: openai.OpenAI, messages: list[dict[str, Any]], **fields: Any) -> Any:
    return client.chat.completions.create(
        model=REAL_MODEL, messages=messages, temperature=0, max_tokens=80, **fields
    )


def weather_arguments(call: Any) -> dict[str, Any]:
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    arguments: dict[str, Any] = json.loads(call.function.arguments)
    jsonschema.validate(arguments, WEATHER_PARAMETERS)
    return arguments


def streamed(
    client: openai.OpenAI, messages: list[dict[str, Any]], **fields: Any
) -> tuple[str, list[Any], str]:
    """A stream's content, its calls put together from their deltas (as the SDK's users do), and its
    finish_reason."""
    content, calls, finish = "", {}, ""
    for chunk in chat(client, messages, stream=True, **fields):
        for choice in chunk.choices:
            content += choice.delta.content or ""
            for delta in choice.delta.tool_calls or []:
                if delta.id is not None:
                    assert delta.function.arguments == "" and delta.type == "function"
                    calls[delta.index] = {"id": delta.id, "name": delta.function.name, "arguments": ""}
                else:
                    calls[delta.index]["arguments"] += delta.function.arguments or ""
            finish = choice.finish_reason or finish
    return content, [calls[i] for i in sorted(calls)], finish


def test_required_makes_the_model_call_a_tool_with_valid_arguments(real_client: openai.OpenAI) -> None:
    completion = chat(
        real_client, QUESTION, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False
    )
    [choice] = completion.choices
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert weather_arguments(call) == {"city": "Paris", "unit": "celsius"}


def test_with_parallel_calls_the_model_may_make_several_each_valid(real_client: openai.OpenAI) -> None:
    completion = chat(real_client, QUESTION, tools=[WEATHER], tool_choice="required")
    [choice] = completion.choices
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [weather_arguments(call)["city"] for call in calls] == ["Paris"] * len(calls)
    assert len({call.id for call in calls}) == len(calls) >= 1


def test_a_named_function_is_the_one_called_once(real_client: openai.OpenAI) -> None:
    named = {"type": "function", "function": {"name": "get_time"}}
    completion = chat(real_client, QUESTION, tools=[WEATHER, TIME], tool_choice=named)
    [choice] = completion.choices
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.function.name == "get_time"
    assert list(json.loads(call.function.arguments)) == ["zone"]


def test_in_auto_the_model_calls_the_tool_by_itself(real_client: openai.OpenAI) -> None:
    completion = chat(real_client, ONE_SHOT, tools=[WEATHER])
    [choice] = completion.choices
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert weather_arguments(call)["city"] == "Tokyo"


@pytest.mark.parametrize(("messages", "choice"), [(QUESTION, "required"), (ONE_SHOT, "auto")])
def test_a_streamed_call_is_the_same_call(
    real_client: openai.OpenAI, messages: list[dict[str, Any]], choice: str
) -> None:
    whole = chat(real_client, messages, tools=[WEATHER], tool_choice=choice).choices[0].message.tool_calls
    content, calls, finish = streamed(real_client, messages, tools=[WEATHER], tool_choice=choice)
    assert finish == "tool_calls" and content == ""
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
        (c.function.name, json.loads(c.function.arguments)) for c in whole
    ]


def test_a_conversation_goes_on_after_the_tools_result(real_client: openai.OpenAI) -> None:
    messages = [
        *ONE_SHOT[:2],
        {"role": "tool", "tool_call_id": "call_london", "content": '{"temperature": 15, "sky": "cloudy"}'},
    ]
    completion = chat(real_client, messages, tools=[WEATHER])
    [choice] = completion.choices
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert "15" in choice.message.content and "London" in choice.message.content


def test_tool_choice_none_answers_in_text(real_client: openai.OpenAI) -> None:
    completion = chat(real_client, ONE_SHOT, tools=[WEATHER], tool_choice="none")
    [choice] = completion.choices
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert choice.message.content


def test_a_named_function_not_offered_is_a_400(real_client: openai.OpenAI) -> None:
    named = {"type": "function", "function": {"name": "get_time"}}
    with pytest.raises(openai.BadRequestError) as raised:
        chat(real_client, QUESTION, tools=[WEATHER], tool_choice=named)
    assert raised.value.body["param"] == "tool_choice"  # type: ignore[index]


def test_the_responses_api_gives_a_function_call_item(real_client: openai.OpenAI) -> None:
    function = {"type": "function", **WEATHER["function"]}
    response = real_client.responses.create(
        model=REAL_MODEL,
        input="What is the weather in Paris?",
        tools=[function],
        tool_choice="required",
        parallel_tool_calls=False,
        temperature=0,
    )
    [item] = response.output
    assert item.type == "function_call" and item.name == "get_weather"
    assert json.loads(item.arguments) == {"city": "Paris", "unit": "celsius"}


def test_parameters_the_grammar_cannot_enforce_are_a_400_before_any_work(real_client: openai.OpenAI) -> None:
    pick = {
        "type": "function",
        "function": {
            "name": "pick",
            "parameters": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        },
    }
    with pytest.raises(openai.BadRequestError) as raised:
        chat(real_client, QUESTION, tools=[WEATHER, pick], tool_choice="required")
    assert raised.value.body["param"] == "tools.1.function.parameters"  # type: ignore[index]
    assert raised.value.code == "unsupported_parameter"
    assert "uniqueItems" in raised.value.message and "pick" in raised.value.message


def test_a_streamed_response_carries_the_function_call_events(real_client: openai.OpenAI) -> None:
    events = list(
        real_client.responses.create(
            model=REAL_MODEL,
            input="What is the weather in Paris?",
            tools=[{"type": "function", **WEATHER["function"]}],
            tool_choice="required",
            parallel_tool_calls=False,
            temperature=0,
            stream=True,
        )
    )
    kinds = [event.type for event in events]
    assert "response.function_call_arguments.delta" in kinds and kinds[-1] == "response.completed"
    [done] = [event for event in events if event.type == "response.function_call_arguments.done"]
    assert json.loads(done.arguments) == {"city": "Paris", "unit": "celsius"}
