from __future__ import annotations

import json

import pytest

from llmapi.protocol.chat import ToolCall
from llmapi.services.tool_calls import ToolCallReader, read_answer

NAMES = {"get_weather", "add"}
WEATHER = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


def test_a_hermes_block_is_a_call_with_its_arguments_as_json_text() -> None:
    read = read_answer(f"<tool_call>\n{WEATHER}\n</tool_call>", NAMES)
    assert read.content is None
    [call] = read.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_the_llama_3_form_as_the_whole_answer_is_a_call() -> None:
    read = read_answer('  {"name": "add", "parameters": {"a": 1, "b": 2}}', NAMES)
    assert read.content is None
    assert [json.loads(c.function.arguments) for c in read.tool_calls] == [{"a": 1, "b": 2}]
    listed = read_answer('<|python_tag|>[{"name": "add", "parameters": {}}, ' + WEATHER + "]", NAMES)
    assert [c.function.name for c in listed.tool_calls] == ["add", "get_weather"]


def test_text_around_calls_is_content_and_calls_keep_their_order() -> None:
    add = '{"name": "add", "arguments": "{}"}'
    text = f"Let me check.\n<tool_call>{WEATHER}</tool_call>\n<tool_call>{add}</tool_call>\n"
    read = read_answer(text, NAMES)
    assert read.content == "Let me check."
    assert [c.function.name for c in read.tool_calls] == ["get_weather", "add"]
    assert read.tool_calls[1].function.arguments == "{}"  # arguments given as JSON text are read too


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "delete_everything", "arguments": {}}',  # a function the request did not offer
        '{"name": "add"}x',  # not JSON
        '<tool_call>{"name": "add", "arguments": [1]}</tool_call>',  # arguments not an object
        "The answer is <tool_call",
        '{"city": "Paris"}',  # JSON, but not a call
    ],
)
def test_what_is_not_a_call_of_an_offered_function_stays_text(text: str) -> None:
    read = read_answer(text, NAMES)
    assert read.tool_calls == []
    assert read.content == text


def test_a_call_the_model_never_closed_counts_when_its_json_is_whole() -> None:
    assert len(read_answer(f"<tool_call>{WEATHER}", NAMES).tool_calls) == 1
    assert read_answer('<tool_call>{"name": "add", "argu', NAMES).tool_calls == []


def test_without_parallel_calls_only_the_first_call_counts() -> None:
    text = f"<tool_call>{WEATHER}</tool_call><tool_call>{WEATHER}</tool_call>"
    assert len(read_answer(text, NAMES).tool_calls) == 2
    assert len(read_answer(text, NAMES, parallel=False).tool_calls) == 1


@pytest.mark.parametrize(
    "text",
    [
        f"Sure! <tool_call>\n{WEATHER}\n</tool_call> done <tool_ca",
        f"  {WEATHER}",
        "Plain text with < and <tool and {braces}.",
        f"<tool_call>{WEATHER}</tool_call>\n\n<tool_call>bad</tool_call>",
    ],
)
@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_a_stream_read_in_pieces_reads_as_the_whole_answer(text: str, size: int) -> None:
    reader = ToolCallReader(NAMES)
    pieces = []
    for at in range(0, len(text), size):
        pieces += reader.feed(text[at : at + size])
    pieces += reader.finish()
    whole = read_answer(text, NAMES)
    content = "".join(p for p in pieces if isinstance(p, str))
    assert content == (whole.content or "")
    calls = [p for p in pieces if isinstance(p, ToolCall)]
    assert [c.function for c in calls] == [c.function for c in whole.tool_calls]


def test_a_stream_holds_back_only_what_may_start_a_call() -> None:
    reader = ToolCallReader(NAMES)
    assert reader.feed("Hello <tool") == ["Hello"]  # the space waits for what follows it
    assert reader.feed("box> there") == [" <toolbox> there"]
    assert reader.finish() == []
