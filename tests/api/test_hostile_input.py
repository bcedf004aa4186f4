"""Hostile and malformed input gets a clear 4xx in the OpenAI shape, fast: never a 5xx, never a leak."""

from __future__ import annotations

import httpx
import pytest
from tests.conftest import OpenAISchemas
from tests.servers import ADMIN_HEADERS, RunningServer

TEXT_MODEL = "gpt2-124m-random"
CHAT = "/v1/chat/completions"
XML = {"Content-Type": "application/xml"}

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>'
    "<request><model>&lol4;</model></request>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
    "<request><model>gpt2-124m-random</model><messages><item><role>user</role>"
    "<content>&secret;</content></item></messages></request>"
)


@pytest.fixture(scope="module")
def http(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=60, headers=ADMIN_HEADERS)


def chat(**fields: object) -> dict[str, object]:
    return {"model": TEXT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, **fields}


def refused(response: httpx.Response, status: int, schemas: OpenAISchemas) -> dict[str, str]:
    assert response.status_code == status, response.text
    schemas.validate("ErrorResponse", response.json())
    error: dict[str, str] = response.json()["error"]
    return error


@pytest.mark.parametrize(("name", "document"), [("billion laughs", BILLION_LAUGHS), ("XXE", EXTERNAL_ENTITY)])
def test_xml_with_entities_is_refused(
    http: httpx.Client, openai_schemas: OpenAISchemas, name: str, document: str
) -> None:
    error = refused(http.post(CHAT, content=document, headers=XML), 400, openai_schemas)

    assert error["code"] == "invalid_body"
    assert "root:" not in str(error), "no file contents may leak"


def test_malformed_and_deep_xml_are_refused(http: httpx.Client, openai_schemas: OpenAISchemas) -> None:
    deep = "<request>" + "<a>" * 200 + "x" + "</a>" * 200 + "</request>"

    assert refused(http.post(CHAT, content="<request><model>", headers=XML), 400, openai_schemas)
    assert "deep" in refused(http.post(CHAT, content=deep, headers=XML), 400, openai_schemas)["message"]


def test_deeply_nested_json_is_refused(http: httpx.Client, openai_schemas: OpenAISchemas) -> None:
    for depth in (100, 100_000):
        body = '{"model": ' + "[" * depth + "]" * depth + "}"
        error = refused(
            http.post(CHAT, content=body, headers={"Content-Type": "application/json"}), 400, openai_schemas
        )
        assert error["code"] == "invalid_json"
        assert "deeper than the limit" in error["message"]


def test_invalid_utf8_is_refused(http: httpx.Client, openai_schemas: OpenAISchemas) -> None:
    body = b'{"model": "gpt2-124m-random", "messages": [{"role": "user", "content": "\xff\xfe"}]}'

    error = refused(
        http.post(CHAT, content=body, headers={"Content-Type": "application/json"}), 400, openai_schemas
    )

    assert "UTF-8" in error["message"]


def test_a_body_over_the_limit_is_refused_while_it_is_read(
    http: httpx.Client, openai_schemas: OpenAISchemas
) -> None:
    huge = b'{"model": "' + b"x" * (5 << 20) + b'"}'

    error = refused(
        http.post(CHAT, content=huge, headers={"Content-Type": "application/json"}), 413, openai_schemas
    )

    assert "limit" in error["message"]


def test_an_unsupported_content_type_is_415(http: httpx.Client, openai_schemas: OpenAISchemas) -> None:
    form = http.post(CHAT, content="model=x", headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert refused(form, 415, openai_schemas)["code"] == "unsupported_media_type"


def test_an_accept_that_allows_no_format_is_406(http: httpx.Client, openai_schemas: OpenAISchemas) -> None:
    html = http.post(CHAT, json=chat(), headers={"Accept": "text/html"})
    no_protobuf_form = http.get("/v1/me", headers={"Accept": "application/x-protobuf"})

    assert refused(html, 406, openai_schemas)["code"] == "not_acceptable"
    assert refused(no_protobuf_form, 406, openai_schemas)["code"] == "not_acceptable"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"messages": [{"role": "user", "content": "bell \x07 here"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": "x"}] * 2049}, "messages"),
        ({"messages": [{"role": "user", "content": "x" * 1_000_001}]}, "messages.0.content"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": ["x" * 257]}, "stop.0"),
        ({"stop": "nul\x00"}, "stop"),
        ({"n": 17}, "n"),
        ({"max_tokens": 10**9}, "max_tokens"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ],
)
def test_out_of_bounds_fields_are_400_naming_the_field(
    http: httpx.Client, openai_schemas: OpenAISchemas, fields: dict[str, object], param: str
) -> None:
    error = refused(http.post(CHAT, json=chat(**fields)), 400, openai_schemas)

    assert error["param"] == param


def test_control_characters_are_refused_in_every_text_field(http: httpx.Client) -> None:
    cases = [
        ("/v1/completions", {"model": TEXT_MODEL, "prompt": "a\x1bb"}, "prompt"),
        ("/v1/generate/text", {"prompt": "a\x00b"}, "prompt"),
        ("/v1/embeddings", {"model": "all-MiniLM-L6-v2", "input": ["ok", "a\x0bb"]}, "input.1"),
        ("/v1/analyze/sentiment", {"text": "a\x7fb"}, "text"),
    ]
    for path, body, param in cases:
        response = http.post(path, json=body)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"]["param"] == param, path


def test_tabs_and_newlines_are_text(http: httpx.Client) -> None:
    response = http.post("/v1/analyze/sentiment", json={"text": "good\tday\r\nreally"})

    assert response.status_code == 200
