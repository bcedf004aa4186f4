from __future__ import annotations

import json
from typing import Any

import pytest

from llmapi.engine.constraint import ANY_JSON_OBJECT
from llmapi.errors import InvalidRequestError, UnsupportedError
from llmapi.services.response_format import response_constraint

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def test_text_and_no_format_are_free() -> None:
    assert response_constraint(None) is None
    assert response_constraint({"type": "text"}) is None


def test_json_object_is_any_object() -> None:
    assert response_constraint({"type": "json_object"}) == ANY_JSON_OBJECT


@pytest.mark.parametrize("strict", [True, False, None])
def test_json_schema_is_enforced_strict_or_not(strict: bool | None) -> None:
    constraint = response_constraint(
        {"type": "json_schema", "json_schema": {"name": "thing", "schema": SCHEMA, "strict": strict}}
    )
    assert constraint is not None
    assert constraint.kind == "json_schema"
    assert json.loads(constraint.source) == SCHEMA


def test_a_json_schema_without_a_schema_is_any_object() -> None:
    assert response_constraint({"type": "json_schema", "json_schema": {"name": "x"}}) == ANY_JSON_OBJECT


def test_a_schema_with_an_unimplemented_keyword_is_unsupported_and_named() -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    with pytest.raises(UnsupportedError, match="uniqueItems") as caught:
        response_constraint({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert caught.value.param == "response_format"


@pytest.mark.parametrize(
    ("response_format", "named"),
    [
        ({"type": "json_schema"}, "json_schema"),
        ({"type": "json_schema", "json_schema": {"schema": SCHEMA}}, "name"),
        ({"type": "json_schema", "json_schema": {"name": "a b", "schema": SCHEMA}}, "name"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": [1]}}, "schema"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA, "strict": "yes"}}, "strict"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "strin"}}}, "strin"),
    ],
)
def test_malformed_formats_are_invalid_requests(response_format: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidRequestError, match=named) as caught:
        response_constraint(response_format)
    assert caught.value.param == "response_format"


@pytest.mark.parametrize("kind", ["grammar", "regex", None])
def test_other_types_are_unsupported(kind: str | None) -> None:
    with pytest.raises(UnsupportedError, match="json_schema"):
        response_constraint({"type": kind})
