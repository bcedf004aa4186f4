"""A request's `response_format`, for a local model: the constraint its answers are decoded under.

`json_object` is any JSON object; `json_schema` is its schema (with or without `strict`: either way the
schema is enforced whole, and one the grammar engine cannot enforce is a 400 naming what, never a looser
answer); `text`, or none, is free text."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from llmapi.engine.constraint import ANY_JSON_OBJECT, Constraint, check_constraint
from llmapi.engine.errors import ConstraintError
from llmapi.errors import InvalidRequestError, UnsupportedError

_PARAM = "response_format"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def response_constraint(response_format: Mapping[str, Any] | None) -> Constraint | None:
    """The constraint of a response_format, checked; InvalidRequestError or UnsupportedError otherwise."""
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return ANY_JSON_OBJECT
    if kind != "json_schema":
        raise UnsupportedError(
            f"response_format type {kind!r} is not supported; use 'text', 'json_object' or 'json_schema'.",
            param=_PARAM,
        )
    constraint = _schema_constraint(response_format.get("json_schema"))
    try:
        check_constraint(constraint)
    except ConstraintError as exc:
        error = UnsupportedError if "Unimplemented" in str(exc) else InvalidRequestError
        raise error(
            f"response_format's JSON schema cannot be enforced: {exc}. Remove or rewrite that part "
            "of the schema.",
            param=_PARAM,
        ) from exc
    return constraint


def _schema_constraint(json_schema: object) -> Constraint:
    if not isinstance(json_schema, Mapping):
        raise InvalidRequestError(
            "response_format of type 'json_schema' needs a 'json_schema' object with a name and a schema.",
            param=_PARAM,
        )
    name = json_schema.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidRequestError(
            "response_format.json_schema.name must be 1 to 64 letters, digits, underscores or dashes.",
            param=_PARAM,
        )
    strict = json_schema.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise InvalidRequestError(
            "response_format.json_schema.strict must be true, false or null.",
            param=_PARAM,
        )
    schema = json_schema.get("schema")
    if schema is None:
        return ANY_JSON_OBJECT
    if not isinstance(schema, Mapping):
        raise InvalidRequestError(
            "response_format.json_schema.schema must be a JSON schema object.",
            param=_PARAM,
        )
    return Constraint("json_schema", json.dumps(schema, separators=(",", ":")))
