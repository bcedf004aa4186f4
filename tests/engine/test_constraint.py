from __future__ import annotations

import json

import pytest

from llmapi.engine.constraint import ANY_JSON_OBJECT, Constraint, check_constraint, lark_json
from llmapi.engine.errors import ConstraintError


@pytest.mark.parametrize(
    "schema",
    [
        {
            "type": "object",
            "properties": {"a": {"type": "array", "items": {"$ref": "#/$defs/b"}}},
            "$defs": {"b": {"enum": [1, 2]}},
        },
        {"anyOf": [{"type": "string", "pattern": "^[a-z]+$"}, {"type": "null"}]},
        {"type": "string", "format": "date-time"},
    ],
)
def test_schemas_the_engine_enforces_pass(schema: dict[str, object]) -> None:
    check_constraint(Constraint("json_schema", json.dumps(schema)))


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ('{"type": "array", "uniqueItems": true}', "uniqueItems"),
        ('{"not": {"type": "integer"}}', "not"),
        ('{"type": "strin"}', "strin"),
        ('{"properties": {"a": {"$ref": "#/nowhere"}}}', "nowhere"),
        ('{"type": "string", "pattern": "(?<=a)b"}', "look-around"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be an object"),
    ],
)
def test_what_cannot_be_enforced_is_named(source: str, named: str) -> None:
    with pytest.raises(ConstraintError, match=named):
        check_constraint(Constraint("json_schema", source))


def test_lark_grammars_are_checked_too() -> None:
    check_constraint(Constraint("lark", f'start: "x" obj\nobj: {lark_json({"type": "object"})}'))
    with pytest.raises(ConstraintError, match="unknown name"):
        check_constraint(Constraint("lark", "start: undefined_rule"))


def test_lark_json_keeps_the_schema_and_lays_it_out_compactly() -> None:
    body = lark_json({"type": "object", "required": ["a"]})
    schema = json.loads(body.removeprefix("%json "))
    assert schema["required"] == ["a"]
    assert schema["x-guidance"]["whitespace_flexible"] is False


def test_any_json_object_is_a_schema_of_objects() -> None:
    assert json.loads(ANY_JSON_OBJECT.source) == {"type": "object"}
    check_constraint(ANY_JSON_OBJECT)
