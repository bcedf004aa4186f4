"""Every error in the OpenAI shape, with a status a client can act on, and a request id."""

from __future__ import annotations

import httpx
import pytest
from tests.conftest import OpenAISchemas
from tests.servers import ADMIN_HEADERS, RunningServer


@pytest.fixture(scope="module")
def http(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=60, headers=ADMIN_HEADERS)


def assert_openai_error(response: httpx.Response, status: int, schemas: OpenAISchemas) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    schemas.validate("ErrorResponse", body)
    assert response.headers["x-request-id"]
    error: dict[str, object] = body["error"]
    return error


def test_malformed_json_is_a_400(http: httpx.Client, openai_schemas: OpenAISchemas) -> None:
    response = http.post(
        "/v1/chat/completions",
        content=b'{"model": "x", "messages": [',
        headers={"content-type": "application/json"},
    )
    error = assert_openai_error(response, 400, openai_schemas)
    assert error["code"] == "invalid_json"


def test_a_body_that_is_not_a_json_object_is_a_400(http: httpx.Client, openai_schemas: OpenAISchemas) -> None:
    for body, headers in ((b"{bad", {}), (b"[1, 2]", {"content-type": "application/json"})):
        response = http.post("/v1/chat/completions", content=body, headers=headers)
        error = assert_openai_error(response, 400, openai_schemas)
        assert "JSON object" in str(error["message"])


def test_missing_field_names_the_param(http: httpx.Client, openai_schemas: OpenAISchemas) -> None:
    response = http.post("/v1/chat/completions", json={"model": "gpt2-124m-random"})
    error = assert_openai_error(response, 400, openai_schemas)
    assert error["param"] == "messages"
    assert "required" in str(error["message"])


def test_wrong_type_in_nested_field(http: httpx.Client, openai_schemas: OpenAISchemas) -> None:
    response = http.post(
        "/v1/chat/completions",
        json={"model": "gpt2-124m-random", "messages": [{"role": "wizard", "content": "x"}]},
    )
    error = assert_openai_error(response, 400, openai_schemas)
    assert str(error["param"]).startswith("messages.0")


@pytest.mark.parametrize(
    ("fields", "feature"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}],
                    }
                ]
            },
            "non-text content",
        ),
    ],
)
def test_what_a_local_model_cannot_do_is_refused_not_ignored(
    http: httpx.Client, openai_schemas: OpenAISchemas, fields: dict[str, object], feature: str
) -> None:
    body = {"model": "gpt2-124m-random", "messages": [{"role": "user", "content": "x"}], **fields}
    error = assert_openai_error(http.post("/v1/chat/completions", json=body), 400, openai_schemas)
    assert f"does not support {feature}" in str(error["message"])
    assert error["code"] == "unsupported_parameter"


def test_unknown_fields_are_accepted(http: httpx.Client) -> None:
    response = http.post(
        "/v1/completions",
        json={"model": "gpt2-124m-random", "prompt": "x", "max_tokens": 1, "some_future_field": {"a": 1}},
    )
    assert response.status_code == 200, response.text


def test_unknown_route_and_method(http: httpx.Client, openai_schemas: OpenAISchemas) -> None:
    assert_openai_error(http.get("/v1/nothing-here"), 404, openai_schemas)
    assert_openai_error(http.get("/v1/chat/completions"), 405, openai_schemas)


def test_unknown_model_in_stream_is_a_404_before_the_stream(
    http: httpx.Client, openai_schemas: OpenAISchemas
) -> None:
    response = http.post(
        "/v1/chat/completions",
        json={"model": "nope", "messages": [{"role": "user", "content": "x"}], "stream": True},
    )
    error = assert_openai_error(response, 404, openai_schemas)
    assert error["code"] == "model_not_found"


def test_request_id_is_kept_or_made(http: httpx.Client) -> None:
    assert http.get("/health/live", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = http.get("/health/live").headers["x-request-id"]
    assert len(made) >= 16
    hostile = http.get("/health/live", headers={"x-request-id": "bad id\twith spaces"}).headers[
        "x-request-id"
    ]
    assert hostile != "bad id\twith spaces"


def test_health_and_docs(http: httpx.Client) -> None:
    assert http.get("/health/live").json() == {"status": "ok"}
    ready = http.get("/health/ready")
    assert ready.status_code == 200
    assert set(ready.json()["models"].values()) == {"ready"}
    assert http.get("/docs").status_code == 200
    paths = http.get("/openapi.json").json()["paths"]
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/generate/text"):
        assert path in paths
