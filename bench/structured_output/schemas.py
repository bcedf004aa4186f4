"""The schemas the structured-output benchmarks use: nested ones with a valid example, and one per JSON-schema
feature with a document that breaks that feature (an engine that accepts it ignores the feature)."""

from __future__ import annotations

from typing import Any

PERSON: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "role": {"type": "string", "enum": ["admin", "editor", "viewer"]},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "email": {"type": ["string", "null"]},
    },
    "required": ["name", "age", "role", "address"],
    "additionalProperties": False,
}

ORDER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string"},
                    "quantity": {"type": "integer", "minimum": 1},
                    "price": {"type": "number"},
                },
                "required": ["sku", "quantity", "price"],
                "additionalProperties": False,
            },
            "minItems": 1,
            "maxItems": 4,
        },
        "paid": {"type": "boolean"},
        "note": {"type": "string"},
    },
    "required": ["id", "items", "paid"],
    "additionalProperties": False,
}

EVENT: dict[str, Any] = {
    "$defs": {
        "point": {
            "type": "object",
            "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
            "required": ["x", "y"],
            "additionalProperties": False,
        }
    },
    "type": "object",
    "properties": {
        "kind": {"enum": ["click", "drag"]},
        "at": {"$ref": "#/$defs/point"},
        "path": {"type": "array", "items": {"$ref": "#/$defs/point"}, "maxItems": 3},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}},
    },
    "required": ["kind", "at"],
    "additionalProperties": False,
}

REVIEW: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 40},
        "stars": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
        "pros": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "verdict": {
            "anyOf": [
                {"type": "object", "properties": {"buy": {"const": True}}, "required": ["buy"]},
                {"type": "string"},
            ]
        },
    },
    "required": ["title", "stars", "pros", "verdict"],
    "additionalProperties": False,
}

NESTED: dict[str, tuple[dict[str, Any], str]] = {
    "person": (
        PERSON,
        '{"name": "Ada Lovelace", "age": 36, "role": "admin", "address": {"city": "London", "zip": "W1"}, '
        '"email": null}',
    ),
    "order": (
        ORDER,
        '{"id": 1042, "items": [{"sku": "A-1", "quantity": 2, "price": 9.5}, {"sku": "B-7", "quantity": 1, '
        '"price": 120.0}], "paid": true, "note": "leave at the door"}',
    ),
    "event": (
        EVENT,
        '{"kind": "drag", "at": {"x": 1.5, "y": -2}, "path": [{"x": 0, "y": 0}, {"x": 3.25, "y": 4}], '
        '"tags": ["a", "c"]}',
    ),
    "review": (
        REVIEW,
        '{"title": "Solid kettle", "stars": 4, "pros": ["fast", "quiet"], "verdict": "worth it"}',
    ),
}

COVERAGE: dict[str, tuple[dict[str, Any], str]] = {
    "required": ({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, "{}"),
    "additionalProperties false": (
        {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False},
        '{"b": 1}',
    ),
    "enum": ({"type": "string", "enum": ["x", "y"]}, '"z"'),
    "const": ({"const": "x"}, '"y"'),
    "integer minimum": ({"type": "integer", "minimum": 5}, "3"),
    "number exclusiveMaximum": ({"type": "number", "exclusiveMaximum": 1}, "2.5"),
    "string minLength": ({"type": "string", "minLength": 3}, '"ab"'),
    "string maxLength": ({"type": "string", "maxLength": 2}, '"abc"'),
    "string pattern": ({"type": "string", "pattern": "^[0-9]+$"}, '"abc"'),
    "string format date": ({"type": "string", "format": "date"}, '"yesterday"'),
    "array minItems": ({"type": "array", "items": {"type": "integer"}, "minItems": 2}, "[1]"),
    "array maxItems": ({"type": "array", "items": {"type": "integer"}, "maxItems": 1}, "[1, 2]"),
    "prefixItems": (
        {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
        "[1, 2]",
    ),
    "anyOf": ({"anyOf": [{"type": "integer"}, {"type": "boolean"}]}, '"s"'),
    "oneOf": ({"oneOf": [{"type": "integer"}, {"type": "boolean"}]}, '"s"'),
    "$ref / $defs": (
        {"$defs": {"n": {"type": "integer"}}, "type": "object", "properties": {"a": {"$ref": "#/$defs/n"}}},
        '{"a": "s"}',
    ),
    "recursive $ref": (
        {
            "$defs": {
                "node": {
                    "type": "object",
                    "properties": {
                        "v": {"type": "integer"},
                        "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]},
                    },
                    "required": ["v", "next"],
                    "additionalProperties": False,
                }
            },
            "$ref": "#/$defs/node",
        },
        '{"v": 1, "next": {"v": "x", "next": null}}',
    ),
    "type list with null": ({"type": ["integer", "null"]}, '"s"'),
    "minProperties": ({"type": "object", "minProperties": 1}, "{}"),
    "uniqueItems": ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "[1, 1]"),
    "not": ({"not": {"type": "integer"}}, "1"),
    "multipleOf": ({"type": "integer", "multipleOf": 5}, "7"),
}
