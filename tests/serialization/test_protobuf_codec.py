from __future__ import annotations

import struct
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from llmapi.protocol.chat import ChatChoice, ChatCompletion, ChatCompletionMessage, ChatCompletionRequest
from llmapi.protocol.common import PromptUsage, Usage
from llmapi.protocol.completions import Completion, CompletionChoice, CompletionRequest
from llmapi.protocol.embeddings import Embedding, EmbeddingList, EmbeddingRequest
from llmapi.protocol.errors import ErrorDetail, ErrorResponse
from llmapi.protocol.generate import GenerateTextRequest, GenerateTextResponse
from llmapi.protocol.models import Model, ModelList
from llmapi.protocol.sentiment import SentimentRequest, SentimentResponse, SentimentResult
from llmapi.serialization.codec import DEFAULT_MAX_ITEMS, CodecError
from llmapi.serialization.proto import llmapi_pb2
from llmapi.serialization.protobuf_codec import ProtobufCodec

CODEC = ProtobufCodec()
MESSAGES = sorted(llmapi_pb2.DESCRIPTOR.message_types_by_name)
REQUESTS = [name for name in MESSAGES if name.endswith("Request")]

_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_STRING: st.text(max_size=12),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=False, allow_infinity=False),
    FieldDescriptor.TYPE_FLOAT: st.floats(width=32, allow_nan=False, allow_infinity=False),
}


def json_dicts(message: Descriptor, *, request: bool) -> st.SearchStrategy[dict[str, Any]]:
    """JSON-shaped dicts of `message` as decoding gives them back: a request holds only set fields (the zero
    value of a field without presence is unset), a response every field (an unset optional one as None)."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in message.fields:
        kind = field.message_type
        value: st.SearchStrategy[Any]
        if kind is not None and kind.GetOptions().map_entry:
            scores = _SCALARS[kind.fields_by_name["value"].type]
            value = st.dictionaries(st.text(max_size=8), scores, max_size=3)
        elif field.is_repeated:
            item = _SCALARS[field.type] if kind is None else json_dicts(kind, request=request)
            value = st.lists(item, max_size=3)
        elif kind is not None:
            optional[field.name] = json_dicts(kind, request=request)
            continue
        elif field.has_presence:
            value = _SCALARS[field.type] if request else st.none() | _SCALARS[field.type]
        else:
            value = _SCALARS[field.type]
        if request:
            optional[field.name] = value if field.has_presence else value.filter(bool)
        else:
            required[field.name] = value
    return st.fixed_dictionaries(required, optional=optional)


def round_trip(data: dict[str, Any], message: str) -> dict[str, Any]:
    return CODEC.decode(CODEC.encode(data, message=message), message=message)


@pytest.mark.parametrize("message", MESSAGES)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_every_message_round_trips(message: str, data: st.DataObject) -> None:
    descriptor = llmapi_pb2.DESCRIPTOR.message_types_by_name[message]
    original = data.draw(json_dicts(descriptor, request=message in REQUESTS))

    body = CODEC.encode(original, message=message)
    decoded = CODEC.decode(body, message=message)

    assert decoded == original
    assert round_trip(decoded, message) == decoded


@settings(max_examples=50, deadline=None)
@given(body=st.binary(max_size=64), message=st.sampled_from(MESSAGES))
def test_any_bytes_decode_to_a_dict_or_a_codec_error(body: bytes, message: str) -> None:
    try:
        decoded = CODEC.decode(body, message=message)
    except CodecError:
        return
    assert round_trip(decoded, message) == decoded


def test_unset_optional_request_fields_stay_absent_and_set_zeros_stay_set() -> None:
    request = {"model": "m", "messages": [{"role": "user"}], "temperature": 0.0, "n": 0, "stream": False}

    decoded = round_trip(request, "ChatCompletionRequest")

    assert decoded == {"model": "m", "messages": [{"role": "user"}], "temperature": 0.0, "n": 0}


def test_none_means_unset() -> None:
    decoded = round_trip({"prompt": "", "model": None, "max_tokens": None}, "GenerateTextRequest")

    assert decoded == {"prompt": ""}


def test_int64_fields_come_back_as_ints() -> None:
    assert round_trip({"seed": 2**63 - 1}, "CompletionRequest") == {"seed": 2**63 - 1}
    assert round_trip({"seed": -(2**63)}, "GenerateTextRequest") == {"seed": -(2**63)}
    decoded = round_trip({"object": "list", "data": [{"id": "m", "created": 1_700_000_000}]}, "ModelList")
    assert decoded["data"][0]["created"] == 1_700_000_000


@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"\x0a\x05ab", b"\x12\x02\xc3\x28", b"\x0f"])
def test_invalid_bytes_are_a_codec_error(body: bytes) -> None:
    with pytest.raises(CodecError, match=r"not a valid Protobuf llmapi\.v1\.ChatCompletionRequest"):
        CODEC.decode(body, message="ChatCompletionRequest")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"data": [{"embedding": "AAAAAA==", "index": 0}]}, "EmbeddingList"),
        ({"prompt": [[1, 2, 3]]}, "CompletionRequest"),
        ({"prompt": "one string"}, "CompletionRequest"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
            "ChatCompletionRequest",
        ),
        ({"max_tokens": 2**31}, "GenerateTextRequest"),
    ],
)
def test_json_only_forms_are_a_codec_error(data: dict[str, Any], message: str) -> None:
    with pytest.raises(CodecError, match=f"no Protobuf llmapi.v1.{message} form"):
        CODEC.encode(data, message=message)


def test_unknown_message_names_are_a_programming_error() -> None:
    with pytest.raises(KeyError, match="make proto"):
        CODEC.decode(b"", message="ChatCompletionChunk")


def float32(value: float) -> float:
    """`value` as the float32 an embedding holds, the way the JSON API writes it."""
    rounded: float = struct.unpack("f", struct.pack("f", value))[0]
    return rounded


USAGE = Usage.of(prompt_tokens=7, completion_tokens=3)
RESPONSE_MODELS: list[BaseModel] = [
    ChatCompletion(
        id="chatcmpl-1",
        created=1_700_000_000,
        model="gpt2",
        choices=[
            ChatChoice(index=0, message=ChatCompletionMessage(content="Hello!"), finish_reason="stop"),
            ChatChoice(index=1, message=ChatCompletionMessage(content=""), finish_reason="length"),
            ChatChoice(index=2, message=ChatCompletionMessage(content=None), finish_reason="stop"),
        ],
        usage=USAGE,
    ),
    Completion(
        id="cmpl-1",
        created=1,
        model="gpt2",
        choices=[CompletionChoice(index=0, text="", finish_reason="length")],
        usage=USAGE,
    ),
    Completion(
        id="cmpl-2",
        created=2**40,
        model="gpt2",
        choices=[CompletionChoice(index=0, text=" world", finish_reason=None)],
    ),
    EmbeddingList(
        data=[
            Embedding(embedding=[float32(0.1), float32(-0.2), 0.0, float32(3e-8)], index=0),
            Embedding(embedding=[float32(1 / 3)], index=1),
        ],
        model="all-MiniLM-L6-v2",
        usage=PromptUsage(prompt_tokens=4, total_tokens=4),
    ),
    GenerateTextResponse(id="gen-1", created=5, model="gpt2", output="", finish_reason="stop", usage=USAGE),
    SentimentResponse(
        model="vader",
        results=[
            SentimentResult(
                index=0,
                label="positive",
                score=0.75,
                scores={"positive": 0.75, "neutral": 0.25, "negative": 0},
            )
        ],
        usage=PromptUsage(prompt_tokens=2, total_tokens=2),
    ),
    ModelList(
        data=[
            Model(id="gpt2", created=0, owned_by="llmapi", task="text-generation", context_length=1024),
            Model(id="vader", created=1_700_000_000, owned_by="llmapi", task="sentiment"),
        ]
    ),
    ErrorResponse(
        error=ErrorDetail(message="Invalid body.", type="invalid_request_error", param=None, code=None)
    ),
    ErrorResponse(
        error=ErrorDetail(message="No.", type="not_found_error", param="model", code="model_not_found")
    ),
]


@pytest.mark.parametrize("response", RESPONSE_MODELS, ids=lambda r: type(r).__name__)
def test_json_api_responses_validate_back(response: BaseModel) -> None:
    message = type(response).__name__
    as_json = response.model_dump(mode="json")

    decoded = round_trip(as_json, message)

    assert without_absent_lists(decoded) == without_choice_logprobs(as_json)
    assert type(response).model_validate(decoded) == response


def without_choice_logprobs(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON body less the choices' null logprobs: an absent message, not sent."""
    if "choices" not in data:
        return data
    choices = [{k: v for k, v in c.items() if not (k == "logprobs" and v is None)} for c in data["choices"]]
    return {**data, "choices": choices}


def without_absent_lists(data: dict[str, Any]) -> dict[str, Any]:
    """The decoded body less the empty `tool_calls` Protobuf cannot tell from absent ones."""
    if "choices" not in data:
        return data
    choices = []
    for choice in data["choices"]:
        message = choice.get("message")
        if isinstance(message, dict) and message.get("tool_calls") == []:
            choice = {**choice, "message": {k: v for k, v in message.items() if k != "tool_calls"}}
        choices.append(choice)
    return {**data, "choices": choices}


@pytest.mark.parametrize(
    ("model", "request_json"),
    [
        (
            ChatCompletionRequest,
            {
                "model": "gpt2",
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                "temperature": 0.0,
                "seed": 42,
                "stop": ["\n"],
                "max_completion_tokens": 8,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        ),
        (CompletionRequest, {"model": "gpt2", "prompt": ["a", "b"], "n": 2, "top_k": 5, "echo": True}),
        (EmbeddingRequest, {"model": "all-MiniLM-L6-v2", "input": ["one", "two"], "dimensions": 3}),
        (GenerateTextRequest, {"prompt": "Once", "max_tokens": 4, "top_p": 0.9, "ignore_eos": True}),
        (SentimentRequest, {"texts": ["good", "bad"]}),
        (SentimentRequest, {"text": "good", "model": "vader"}),
    ],
)
def test_requests_validate_as_their_json_does(model: type[BaseModel], request_json: dict[str, Any]) -> None:
    decoded = round_trip(request_json, model.__name__)

    assert decoded == request_json
    assert model.model_validate(decoded) == model.model_validate(request_json)


def empty_messages(count: int) -> bytes:
    """A ChatCompletionRequest of `count` empty messages: repeated fields concatenate on the wire."""
    return llmapi_pb2.ChatCompletionRequest(messages=[llmapi_pb2.ChatMessage()]).SerializeToString() * count


def test_the_default_list_bound() -> None:
    assert CODEC.max_items == DEFAULT_MAX_ITEMS == 131_072


def test_a_list_of_max_items_is_accepted() -> None:
    body = llmapi_pb2.CompletionRequest(prompt=["a"] * DEFAULT_MAX_ITEMS).SerializeToString()
    assert len(CODEC.decode(body, message="CompletionRequest")["prompt"]) == DEFAULT_MAX_ITEMS


def test_a_list_of_more_than_max_items_is_refused() -> None:
    body = llmapi_pb2.CompletionRequest(prompt=["a"] * (DEFAULT_MAX_ITEMS + 1)).SerializeToString()
    refusal = "the field 'prompt' holds more than 131,072 items; split the request"
    with pytest.raises(CodecError, match=refusal):
        CODEC.decode(body, message="CompletionRequest")


def test_a_small_max_items_is_honoured() -> None:
    codec = ProtobufCodec(max_items=3)
    assert codec.decode(empty_messages(3), message="ChatCompletionRequest") == {"messages": [{}, {}, {}]}
    with pytest.raises(CodecError, match="the field 'messages' holds more than 3 items"):
        codec.decode(empty_messages(4), message="ChatCompletionRequest")


@pytest.mark.parametrize(
    ("data", "message", "field"),
    [
        ({"data": [{"embedding": [0.5] * 4, "index": 0}]}, "EmbeddingList", "embedding"),
        ({"results": [{"scores": {"a": 1, "b": 2, "c": 3, "d": 4}}]}, "SentimentResponse", "scores"),
        ({"stop": ["a", "b", "c", "d"], "messages": [{}]}, "ChatCompletionRequest", "stop"),
    ],
)
def test_packed_map_and_nested_fields_are_bounded(data: dict[str, Any], message: str, field: str) -> None:
    body = CODEC.encode(data, message=message)
    assert CODEC.decode(body, message=message)
    with pytest.raises(CodecError, match=f"the field '{field}' holds more than 3 items"):
        ProtobufCodec(max_items=3).decode(body, message=message)


def test_a_hostile_body_of_millions_of_empty_messages_is_refused() -> None:
    with pytest.raises(CodecError, match="the field 'messages' holds more than 131,072 items"):
        CODEC.decode(empty_messages(2 * 1024 * 1024), message="ChatCompletionRequest")


def test_max_items_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_items"):
        ProtobufCodec(max_items=0)
