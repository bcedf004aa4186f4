"""The errors each `/v1` operation of the OpenAPI document can answer, in OpenAI's shape (`ErrorResponse`),
worked out from what the operation is, so that a new route is documented truthfully with nothing to add:

- every one: 400 (FastAPI's 422, which this API never sends, is removed) and 406 (`Accept`);
- with a security requirement: 401, and 503 (credentials cannot be checked: signing keys unavailable);
  with a scope in it: 403;
- with a path parameter: 404; with a body: 413 and 415;
- naming a `model` in its body (inference): 404, 429 (limits) and 503 (overload, model loading, limits
  unavailable), 502 and 504 (a remote engine serving the model failed or timed out); with `stream` in its
  body: `text/event-stream` beside the 200's JSON.

A status the route documents itself stays as it is (the token endpoint's RFC 6749 errors). Errors of the
connection (408, 431, 503 past the connection limit) are described once, in the document's description."""

from __future__ import annotations

from typing import Any

from llmapi.protocol.errors import ErrorResponse
from llmapi.serialization.negotiation import JSON

EVENT_STREAM = "text/event-stream"
_SCHEMAS = "#/components/schemas/"
_VALIDATION = ("HTTPValidationError", "ValidationError")

_ERRORS = {
    "400": "Invalid request: an unreadable or invalid body, parameter or value.",
    "401": "No valid credential (Authorization: Bearer, or x-api-key).",
    "403": "The credential lacks the scope this operation needs.",
    "404": "No such resource.",
    "406": "Accept allows none of the formats of this answer (JSON, XML, Protobuf where it has that form).",
    "413": "The body is larger than the server takes (LLMAPI_MAX_BODY_BYTES).",
    "415": "The body's Content-Type is none of JSON, XML or Protobuf (or unreadable as it).",
    "429": "A rate, token or concurrency limit, or a quota, refused the request; Retry-After and "
    "retry-after-ms say when to try again.",
    "502": "The remote engine serving the model answered with an error.",
    "503": "The credential cannot be checked now (signing keys unavailable); retry.",
    "504": "The remote engine serving the model did not answer in time.",
}
_INFERENCE_404 = "No such model, or a model that does not do this task."
_INFERENCE_503 = (
    "The server is at capacity, the model is still loading, limits cannot be checked (Redis down) or the "
    "credential cannot be checked now; Retry-After says when to try again."
)
# One event of the stream (OpenAPI 3.1: the schema of a text/event-stream describes each event).
_STREAM = {
    "schema": {
        "type": "object",
        "description": "With stream=true, server-sent events: `data: {a chunk as JSON}`, then [DONE].",
        "properties": {
            "data": {"type": "string", "description": 'A chunk, an error as {"error": ...}, or [DONE].'}
        },
        "required": ["data"],
    }
}


def with_error_answers(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if path.startswith("/v1/"):
                _document(operation, _body_properties(operation, schemas))
    for name in _VALIDATION:
        schemas.pop(name, None)
    _add_error_schema(schemas)
    return document


def _document(operation: dict[str, Any], body: dict[str, Any]) -> None:
    security = operation.get("security") or []
    inference = "model" in body
    statuses = ["400", "406"]
    if security:
        statuses += ["401", "503"]
    if any(scopes for requirement in security for scopes in requirement.values()):
        statuses.append("403")
    if inference or any(p.get("in") == "path" for p in operation.get("parameters", [])):
        statuses.append("404")
    if "requestBody" in operation:
        statuses += ["413", "415"]
    if inference:
        statuses += ["429", "502", "503", "504"]
    responses = operation["responses"]
    for status in sorted(set(statuses)):
        description = _ERRORS[status]
        if inference and status == "404":
            description = _INFERENCE_404
        elif inference and status == "503":
            description = _INFERENCE_503
        responses.setdefault(
            status,
            {"description": description, "content": {JSON: {"schema": {"$ref": _SCHEMAS + "ErrorResponse"}}}},
        )
    if "stream" in body:
        for status, response in responses.items():
            if status.startswith("2"):
                response.setdefault("content", {}).setdefault(EVENT_STREAM, _STREAM)


def _body_properties(operation: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """The properties of the operation's JSON body (through a $ref, or an optional body's anyOf)."""
    schema = operation.get("requestBody", {}).get("content", {}).get(JSON, {}).get("schema", {})
    properties: dict[str, Any] = {}
    for option in schema.get("anyOf", [schema]):
        ref = option.get("$ref", "")
        resolved = schemas.get(ref.removeprefix(_SCHEMAS), {}) if ref.startswith(_SCHEMAS) else option
        properties.update(resolved.get("properties", {}))
    return properties


def _add_error_schema(schemas: dict[str, Any]) -> None:
    schema = ErrorResponse.model_json_schema(ref_template=_SCHEMAS + "{model}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault("ErrorResponse", schema)
