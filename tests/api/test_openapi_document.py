"""The OpenAPI document tells the truth: every `/v1` operation lists the errors it can answer, in OpenAI's
shape (the token endpoint's refusals in RFC 6749's), never FastAPI's 422; streams are listed; HEAD answers
have no body; and real error bodies validate against the document's schemas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from tests.api.inprocess import InProcess, in_process
from tests.api.test_security_headers import vader
from tests.servers import ADMIN_HEADERS

from llmapi.serialization.negotiation import JSON, PROTOBUF, XML

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
INFERENCE = {
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/generate/text",
    "/v1/analyze/sentiment",
}
STREAMING = {"/v1/chat/completions", "/v1/responses", "/v1/completions", "/v1/generate/text"}
TOKEN = "/v1/oauth/token"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path, vader(), docs="on") as running:
        yield running


@pytest.fixture
async def document(stack: InProcess) -> dict[str, Any]:
    answer = await stack.client.get("/openapi.json")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def v1_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, operations in document["paths"].items()
        if path.startswith("/v1/")
        for method, operation in operations.items()
    ]


def test_no_operation_documents_a_422(document: dict[str, Any]) -> None:
    for operations in document["paths"].values():
        for operation in operations.values():
            assert "422" not in operation["responses"]
    assert not {"HTTPValidationError", "ValidationError"} & document["components"]["schemas"].keys()


def test_every_v1_operation_lists_the_errors_it_can_answer(document: dict[str, Any]) -> None:
    for path, method, operation in v1_operations(document):
        statuses = set(operation["responses"])
        expected = {"400", "406"}
        security = operation.get("security", [])
        if security:
            expected |= {"401", "503"}
        if any(scopes for requirement in security for scopes in requirement.values()):
            expected.add("403")
        if "{" in path or path in INFERENCE:
            expected.add("404")
        if "requestBody" in operation:
            expected |= {"413", "415"}
        if path in INFERENCE:
            expected |= {"429", "503"}
        if path == TOKEN:
            expected.add("401")
        assert expected <= statuses, (method, path, expected - statuses)
        assert not {"429", "502", "504"} & statuses or path in INFERENCE, (method, path)


def test_error_answers_are_in_the_error_shape_in_every_format(document: dict[str, Any]) -> None:
    for path, method, operation in v1_operations(document):
        for status, response in operation["responses"].items():
            if status < "400":
                continue
            if method == "head":
                assert "content" not in response
                continue
            content = response["content"]
            assert content[PROTOBUF]["schema"]["description"] == "llmapi.v1.ErrorResponse"
            for media_type in (JSON, XML):
                schema = content[media_type]["schema"]
                if path == TOKEN and status in ("400", "401"):
                    refs = [option["$ref"] for option in schema.get("anyOf", [schema])]
                    assert "#/components/schemas/OAuthErrorResponse" in refs
                else:
                    assert schema == ERROR_REF, (method, path, status)


def test_streaming_operations_list_server_sent_events(document: dict[str, Any]) -> None:
    for path, method, operation in v1_operations(document):
        content = operation["responses"].get("200", {}).get("content", {})
        assert ("text/event-stream" in content) == (path in STREAMING), (method, path)


def test_head_operations_are_listed_without_bodies(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        assert ("head" in operations) == ("get" in operations), path
        for response in operations.get("head", {}).get("responses", {}).values():
            assert "content" not in response


def _validate(document: dict[str, Any], schema: dict[str, Any], answer: httpx.Response) -> None:
    jsonschema.validate(answer.json(), {**schema, "components": document["components"]})


async def test_real_error_bodies_validate_against_the_document(
    stack: InProcess, document: dict[str, Any]
) -> None:
    client = stack.client
    answers = {
        400: await client.post("/v1/analyze/sentiment", headers=ADMIN_HEADERS, json={"model": "vader"}),
        401: await client.get("/v1/models"),
        404: await client.get("/v1/models/nope", headers=ADMIN_HEADERS),
        406: await client.get("/v1/me", headers={**ADMIN_HEADERS, "Accept": "image/png"}),
        413: await client.post("/v1/analyze/sentiment", headers=ADMIN_HEADERS, content=b"x" * (5 << 20)),
        415: await client.post(
            "/v1/analyze/sentiment", headers={**ADMIN_HEADERS, "Content-Type": "text/csv"}, content=b"a"
        ),
    }
    for status, answer in answers.items():
        assert answer.status_code == status, answer.text
        _validate(document, ERROR_REF, answer)
    for bad in ({"message": 1}, {"error": {"message": "m", "type": "t"}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, {**ERROR_REF, "components": document["components"]})

    token = document["paths"][TOKEN]["post"]["responses"]
    refused = await client.post("/v1/oauth/token", data={"grant_type": "client_credentials"})
    wrong_grant = await client.post("/v1/oauth/token", data={"grant_type": "password"})
    assert (refused.status_code, wrong_grant.status_code) == (401, 400)
    _validate(document, token["401"]["content"][JSON]["schema"], refused)
    _validate(document, token["400"]["content"][JSON]["schema"], wrong_grant)
