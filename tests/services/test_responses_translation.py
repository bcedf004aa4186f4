"""The Responses API in terms of chat completions: requests translated into chat completion requests,
assistant messages into output items, a streamed answer into the Responses API's events."""

from __future__ import annotations

from typing import Any

import pytest

from llmapi.errors import InvalidRequestError, UnsupportedError
from llmapi.protocol.chat import ChatCompletionMessage
from llmapi.protocol.responses import (
    CreateResponseRequest,
    FunctionCall,
    ModelResponse,
    OutputMessage,
    OutputRefusal,
    OutputText,
    ResponseUsage,
)
from llmapi.services.response_events import ResponseEvents
from llmapi.services.response_translation import (
    admission_request,
    assistant_message,
    chat_document,
    chat_request,
    input_messages,
    output_items,
)
from llmapi.services.responses import Turn

TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object"}, "strict": True}


def request(**fields: Any) -> CreateResponseRequest:
    return CreateResponseRequest.model_validate({"model": "m", "input": "hi", **fields})


def call(call_id: str, name: str = "lookup", arguments: str = "{}") -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def test_a_string_is_one_user_message() -> None:
    assert input_messages(request(input="Hello")) == [{"role": "user", "content": "Hello"}]


def test_messages_keep_their_roles_and_text_parts() -> None:
    items = [
        {"role": "system", "content": "sys"},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev"}]},
        {
            "role": "user",
            "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}],
        },
        {"role": "assistant", "content": [{"type": "output_text", "text": "x", "annotations": []}]},
    ]
    assert input_messages(request(input=items)) == [
        {"role": "system", "content": "sys"},
        {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": "x"},
    ]


def test_images_files_and_audio_become_chat_parts() -> None:
    parts = [
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
        {"type": "input_file", "file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"},
        {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}},
    ]
    [message] = input_messages(request(input=[{"role": "user", "content": parts}]))
    assert message["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"}},
        {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}},
    ]


def test_function_calls_join_the_assistant_message_before_them() -> None:
    items = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "Let me look."},
        call("c1"),
        call("c2", arguments='{"a": 1}'),
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
        call("c3"),
    ]
    assert input_messages(request(input=items)) == [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "lookup", "arguments": '{"a": 1}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "two"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c3", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
            ],
        },
    ]


@pytest.mark.parametrize(
    ("item", "param"),
    [
        ({"type": "reasoning", "id": "rs_1", "summary": []}, "input.0.type"),
        ({"type": "item_reference", "id": "msg_1"}, "input.0.type"),
        ({"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}, "input.0.content.0.type"),
        (
            {"role": "user", "content": [{"type": "input_file", "file_url": "https://x"}]},
            "input.0.content.0.type",
        ),
        (
            {"role": "assistant", "content": [{"type": "input_image", "image_url": "https://x"}]},
            "input.0.content",
        ),
    ],
)
def test_what_chat_cannot_carry_is_refused_with_its_place(item: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedError) as caught:
        input_messages(request(input=[item]))
    assert caught.value.param == param


def test_the_chat_document_carries_every_option() -> None:
    history = [{"role": "user", "content": "before"}, {"role": "assistant", "content": "then"}]
    document = chat_document(
        request(
            instructions="Be brief.",
            max_output_tokens=7,
            temperature=0.5,
            top_p=0.9,
            parallel_tool_calls=False,
            user="u1",
            tools=[TOOL],
            tool_choice={"type": "function", "name": "lookup"},
            text={
                "format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}
            },
            stream=True,
        ),
        [*history, {"role": "user", "content": "now"}],
    )
    assert document == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            *history,
            {"role": "user", "content": "now"},
        ],
        "max_completion_tokens": 7,
        "temperature": 0.5,
        "top_p": 0.9,
        "parallel_tool_calls": False,
        "user": "u1",
        "tools": [
            {
                "type": "function",
                "function": {"name": "lookup", "parameters": {"type": "object"}, "strict": True},
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
        },
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    validated = chat_request(document)
    assert validated.requested_max_tokens() == 7
    assert validated.features() == {"tools", "structured output"}


def test_the_defaults_add_nothing() -> None:
    assert chat_document(request(), [{"role": "user", "content": "hi"}]) == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert "response_format" not in chat_document(request(text={"format": {"type": "text"}}), [])
    assert chat_document(request(text={"format": {"type": "json_object"}}), [])["response_format"] == {
        "type": "json_object"
    }


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools.0.type"),
        ({"tool_choice": {"type": "mcp"}}, "tool_choice"),
    ],
)
def test_hosted_tools_are_refused(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedError) as caught:
        chat_document(request(**fields), [])
    assert caught.value.param == param


def test_faults_found_by_the_chat_schema_are_named_as_the_request_s_fields() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        chat_request({"model": "m", "messages": []})
    assert caught.value.param == "input"


def test_a_turn_reads_its_history_and_leaves_its_instructions_behind() -> None:
    turn = Turn.of(request(instructions="Be brief.", input="now"), [{"role": "user", "content": "before"}])
    assert turn.chat.messages[0].role == "system"
    assert turn.conversation == [{"role": "user", "content": "before"}, {"role": "user", "content": "now"}]
    output = [OutputMessage(id="msg_1", status="completed", content=[OutputText(text="ok")])]
    assert turn.continued_by(output)[-1] == {"role": "assistant", "content": "ok"}


def test_the_response_echoes_the_request() -> None:
    turn = Turn.of(request(tools=[TOOL], temperature=0, metadata={"k": "v"}, store=False), [])
    response = turn.response("m")
    assert (response.status, response.output, response.usage) == ("in_progress", [], None)
    assert (response.temperature, response.top_p, response.store, response.metadata) == (
        0,
        1.0,
        False,
        {"k": "v"},
    )
    assert response.tools[0].model_dump(exclude_none=True) == TOOL
    assert "usage" not in response.model_dump() and "user" not in response.model_dump()


def test_admission_counts_the_whole_input_and_is_never_cached() -> None:
    admitted = admission_request(request(input=[{"type": "reasoning", "summary": []}], max_output_tokens=9))
    assert admitted.requested_max_tokens() == 9
    assert admitted.temperature is None and admitted.seed is None
    assert "reasoning" in admitted.messages[0].text()


def test_an_answer_with_text_and_tool_calls() -> None:
    message = ChatCompletionMessage.model_validate(
        {
            "content": "Looking.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "other", "arguments": "[]"}},
            ],
        }
    )
    text, first, second = output_items(message, "tool_calls")
    assert isinstance(text, OutputMessage) and text.status == "completed"
    assert text.content == [OutputText(text="Looking.")]
    assert isinstance(first, FunctionCall) and isinstance(second, FunctionCall)
    assert (first.call_id, first.name, first.arguments, first.id[:3]) == ("c1", "lookup", "{}", "fc_")
    assert second.call_id == "c2"
    assert assistant_message([text, first, second]) == {
        "role": "assistant",
        "content": "Looking.",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "other", "arguments": "[]"}},
        ],
    }


def test_a_cut_answer_is_incomplete_and_a_refusal_is_kept() -> None:
    [cut] = output_items(ChatCompletionMessage(content="abc"), "length")
    assert isinstance(cut, OutputMessage) and cut.status == "incomplete"
    [refused] = output_items(ChatCompletionMessage(content=None, refusal="No."), "stop")
    assert isinstance(refused, OutputMessage) and refused.content == [OutputRefusal(refusal="No.")]
    assert assistant_message([refused]) == {"role": "assistant", "content": "No."}
    [empty] = output_items(ChatCompletionMessage(content=None), "stop")
    assert isinstance(empty, OutputMessage) and empty.content == [OutputText(text="")]


def in_progress() -> ModelResponse:
    return ModelResponse(id="resp_1", created_at=0, status="in_progress", model="m", output=[])


def test_events_of_a_text_answer() -> None:
    events = ResponseEvents(in_progress())
    sent = [*events.start(), *events.text("Hel"), *events.text("lo")]
    closing, response = events.finish("stop", ResponseUsage.of(3, 2))
    sent += closing
    assert [e.type for e in sent] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in sent] == list(range(len(sent)))
    assert events.sequence_number == len(sent) - 1
    assert response.status == "completed" and response.completed_at is not None
    assert response.output == [
        OutputMessage(id=response.output[0].id, status="completed", content=[OutputText(text="Hello")])
    ]
    assert response.usage == ResponseUsage.of(3, 2)


def test_events_of_text_then_two_calls_cut_short() -> None:
    events = ResponseEvents(in_progress())
    sent = [
        *events.text("Hm."),
        *events.tool_call(0, "c1", "lookup", ""),
        *events.tool_call(0, None, None, '{"q":'),
        *events.tool_call(0, None, None, "1}"),
        *events.tool_call(1, "c2", "other", "[]"),
    ]
    closing, response = events.finish("length", None)
    sent += closing
    types = [e.type for e in sent]
    assert types[types.index("response.output_text.done") :] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    message, first, second = response.output
    assert isinstance(message, OutputMessage) and message.status == "completed"
    assert isinstance(first, FunctionCall) and (first.call_id, first.arguments, first.status) == (
        "c1",
        '{"q":1}',
        "completed",
    )
    assert isinstance(second, FunctionCall) and (second.call_id, second.name) == ("c2", "other")
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert [e.output_index for e in sent if e.type == "response.output_item.done"] == [0, 1, 2]


def test_an_empty_answer_is_an_empty_message() -> None:
    events = ResponseEvents(in_progress())
    closing, response = events.finish("stop", None)
    assert [e.type for e in closing][-2:] == ["response.output_item.done", "response.completed"]
    assert response.output == [
        OutputMessage(id=response.output[0].id, status="completed", content=[OutputText(text="")])
    ]
