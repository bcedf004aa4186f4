"""The same request in JSON, XML and Protobuf gets the same answer, on every endpoint, errors included."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from tests.servers import ADMIN_HEADERS, RunningServer

from llmapi.serialization.proto import llmapi_pb2

TEXT_MODEL = "gpt2-124m-random"
XML = "application/xml"
PROTOBUF = "application/x-protobuf"
# The engine answers every request: the response cache must neither answer nor remember.
NO_CACHE = {"Cache-Control": "no-cache, no-store"}


def to_xml(value: Any, name: str = "request") -> str:
    """The README's mapping, written independently of the server's codec."""
    if isinstance(value, dict):
        inner = "".join(to_xml(item, key) for key, item in value.items())
    elif isinstance(value, list):
        inner = "".join(to_xml(item, "item") for item in value)
    elif isinstance(value, bool):
        inner = "true" if value else "false"
    else:
        inner = escape(str(value))
    return f"<{name}>{inner}</{name}>"


def from_xml(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    if all(child.tag == "item" for child in children):
        return [from_xml(child) for child in children]
    return {child.tag: from_xml(child) for child in children}


@pytest.fixture(scope="module")
def http(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=120, headers={**ADMIN_HEADERS, **NO_CACHE})


def in_three_formats(
    http: httpx.Client, path: str, body: dict[str, Any], request: type[Message], response: type[Message]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    as_json = http.post(path, json=body)
    as_xml = http.post(path, content=to_xml(body), headers={"Content-Type": XML, "Accept": XML})
    message = json_format.ParseDict(body, request())
    as_protobuf = http.post(
        path, content=message.SerializeToString(), headers={"Content-Type": PROTOBUF, "Accept": PROTOBUF}
    )
    for answer, media_type in ((as_json, "application/json"), (as_xml, XML), (as_protobuf, PROTOBUF)):
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith(media_type)
    parsed = response.FromString(as_protobuf.content)
    return (
        as_json.json(),
        from_xml(ET.fromstring(as_xml.content)),
        json_format.MessageToDict(parsed, preserving_proto_field_name=True),
    )


def test_chat_in_three_formats(http: httpx.Client) -> None:
    body = {
        "model": TEXT_MODEL,
        "messages": [{"role": "user", "content": "Say <hello> & goodbye"}],
        "max_tokens": 8,
        "temperature": 0,
    }
    as_json, as_xml, as_protobuf = in_three_formats(
        http, "/v1/chat/completions", body, llmapi_pb2.ChatCompletionRequest, llmapi_pb2.ChatCompletion
    )
    content = as_json["choices"][0]["message"]["content"]

    assert as_xml["choices"][0]["message"]["content"] == content
    assert as_protobuf["choices"][0]["message"]["content"] == content
    assert as_xml["usage"]["completion_tokens"] == str(as_json["usage"]["completion_tokens"])
    assert int(as_protobuf["usage"]["completion_tokens"]) == as_json["usage"]["completion_tokens"]


def test_completions_in_three_formats(http: httpx.Client) -> None:
    body = {
        "model": TEXT_MODEL,
        "prompt": ["def fib(n):"],
        "max_tokens": 6,
        "temperature": 0,
        "stop": ["\n\n"],
    }
    as_json, as_xml, as_protobuf = in_three_formats(
        http, "/v1/completions", body, llmapi_pb2.CompletionRequest, llmapi_pb2.Completion
    )
    text = as_json["choices"][0]["text"]

    assert as_xml["choices"][0]["text"] == text
    assert as_protobuf["choices"][0]["text"] == text


def test_generate_in_three_formats(http: httpx.Client) -> None:
    body = {"prompt": "Once upon a time", "max_tokens": 5, "seed": 11, "temperature": 0.8}
    as_json, as_xml, as_protobuf = in_three_formats(
        http, "/v1/generate/text", body, llmapi_pb2.GenerateTextRequest, llmapi_pb2.GenerateTextResponse
    )

    assert as_xml["output"] == as_protobuf["output"] == as_json["output"]


def test_embeddings_in_three_formats(http: httpx.Client) -> None:
    body = {"model": "all-MiniLM-L6-v2", "input": ["a cat", "a dog"]}
    as_json, as_xml, as_protobuf = in_three_formats(
        http, "/v1/embeddings", body, llmapi_pb2.EmbeddingRequest, llmapi_pb2.EmbeddingList
    )
    vectors = [item["embedding"] for item in as_json["data"]]

    for i, vector in enumerate(vectors):
        assert [float(x) for x in as_xml["data"][i]["embedding"]] == pytest.approx(vector)
        assert as_protobuf["data"][i]["embedding"] == pytest.approx(vector, abs=1e-6)


def test_sentiment_in_three_formats(http: httpx.Client) -> None:
    body = {"texts": ["I love it", "I hate it"]}
    as_json, as_xml, as_protobuf = in_three_formats(
        http, "/v1/analyze/sentiment", body, llmapi_pb2.SentimentRequest, llmapi_pb2.SentimentResponse
    )
    labels = [r["label"] for r in as_json["results"]]

    assert [r["label"] for r in as_xml["results"]] == labels == ["positive", "negative"]
    assert [r["label"] for r in as_protobuf["results"]] == labels


def test_models_in_three_formats(http: httpx.Client) -> None:
    as_json = http.get("/v1/models").json()
    as_xml = from_xml(ET.fromstring(http.get("/v1/models", headers={"Accept": XML}).content))
    as_protobuf = llmapi_pb2.ModelList.FromString(
        http.get("/v1/models", headers={"Accept": PROTOBUF}).content
    )

    ids = [m["id"] for m in as_json["data"]]
    assert [m["id"] for m in as_xml["data"]] == ids
    assert [m.id for m in as_protobuf.data] == ids


def test_errors_come_in_the_asked_format(http: httpx.Client) -> None:
    body = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}

    as_xml = http.post(
        "/v1/chat/completions", content=to_xml(body), headers={"Content-Type": XML, "Accept": XML}
    )
    as_protobuf = http.post("/v1/chat/completions", json=body, headers={"Accept": PROTOBUF})

    assert as_xml.status_code == as_protobuf.status_code == 404
    assert from_xml(ET.fromstring(as_xml.content))["error"]["code"] == "model_not_found"
    error = llmapi_pb2.ErrorResponse.FromString(as_protobuf.content).error
    assert (error.code, error.param) == ("model_not_found", "model")


def test_xml_fields_are_validated_as_json_fields_are(http: httpx.Client) -> None:
    body = {"model": TEXT_MODEL, "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}

    refused = http.post("/v1/chat/completions", content=to_xml(body), headers={"Content-Type": XML})

    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "temperature"


def test_a_stream_stays_server_sent_json_whatever_the_format(http: httpx.Client) -> None:
    body = {"prompt": "Once", "max_tokens": 3, "temperature": 0, "stream": True}

    streamed = http.post(
        "/v1/generate/text", content=to_xml(body), headers={"Content-Type": XML, "Accept": XML}
    )

    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.text.rstrip().endswith("data: [DONE]")


def test_the_openapi_document_lists_all_three_media_types(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    chat = document["paths"]["/v1/chat/completions"]["post"]

    assert set(chat["requestBody"]["content"]) == {"application/json", XML, PROTOBUF}
    assert set(chat["responses"]["200"]["content"]) == {
        "application/json",
        XML,
        PROTOBUF,
        "text/event-stream",
    }


def test_chat_logprobs_in_three_formats(http: httpx.Client) -> None:
    body = {
        "model": TEXT_MODEL,
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": 4,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 2,
    }
    as_json, as_xml, as_protobuf = in_three_formats(
        http, "/v1/chat/completions", body, llmapi_pb2.ChatCompletionRequest, llmapi_pb2.ChatCompletion
    )
    content = as_json["choices"][0]["logprobs"]["content"]
    assert len(content) == as_json["usage"]["completion_tokens"]
    tokens = [token["token"] for token in content]
    assert [token["token"] for token in as_xml["choices"][0]["logprobs"]["content"]] == tokens
    assert [token["token"] for token in as_protobuf["choices"][0]["logprobs"]["content"]] == tokens
    first = as_protobuf["choices"][0]["logprobs"]["content"][0]
    assert first["bytes"] == content[0]["bytes"]
    assert first["logprob"] == pytest.approx(content[0]["logprob"], abs=0.05)
    assert len(first["top_logprobs"]) == 2


def test_completions_logprobs_are_json_only(http: httpx.Client) -> None:
    body = {"model": TEXT_MODEL, "prompt": ["def fib(n):"], "max_tokens": 3, "temperature": 0, "logprobs": 1}
    as_json, as_xml, as_protobuf = in_three_formats(
        http, "/v1/completions", body, llmapi_pb2.CompletionRequest, llmapi_pb2.Completion
    )
    tokens = as_json["choices"][0]["logprobs"]["tokens"]
    assert len(tokens) == as_json["usage"]["completion_tokens"]
    assert [t for t in as_xml["choices"][0]["logprobs"]["tokens"]] == tokens
    assert "logprobs" not in as_protobuf["choices"][0]  # the Protobuf Completion has no field for them
