"""The OpenAPI document lists XML and Protobuf beside JSON wherever the API takes or returns them."""

from __future__ import annotations

from typing import Any

from llmapi.serialization.messages import ERROR, protobuf_messages
from llmapi.serialization.negotiation import JSON, PROTOBUF, XML


def with_all_media_types(document: dict[str, Any]) -> dict[str, Any]:
    for path, operations in document.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for operation in operations.values():
            messages = protobuf_messages(operation)
            _add(operation.get("requestBody", {}).get("content", {}), messages.request)
            for status, response in operation.get("responses", {}).items():
                message = ERROR if status[:1] in "45" else messages.response
                _add(response.get("content", {}), message)
    return document


def _add(content: dict[str, Any], message: str | None) -> None:
    if JSON not in content:
        return
    content.setdefault(XML, {"schema": content[JSON].get("schema", {})})
    if message is not None:
        content.setdefault(
            PROTOBUF,
            {"schema": {"type": "string", "format": "binary", "description": f"llmapi.v1.{message}"}},
        )
