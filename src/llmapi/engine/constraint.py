"""What a sequence's output must match: a JSON schema or a Lark grammar, enforced by constrained decoding.

llguidance is the grammar engine (bench/structured_output/README.md compares it with xgrammar and
outlines-core): it compiles a grammar in about a millisecond and refuses the JSON-schema keywords it does not
implement instead of ignoring them, so what it accepts it enforces.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import llguidance

if TYPE_CHECKING:
    from llguidance._lib import JsonCompileOptions

from llmapi.engine.errors import ConstraintError

ConstraintKind = Literal["json_schema", "lark"]

JSON_LAYOUT: JsonCompileOptions = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
}
"""One space after commas and colons and no other whitespace: a small model cannot fill the answer with
newlines, and the output reads as json.dumps writes it."""


@dataclass(frozen=True, slots=True)
class Constraint:
    """`source` is the JSON text of a JSON schema, or a Lark grammar in llguidance's dialect (which embeds a
    JSON schema as `%json { ... }`)."""

    kind: ConstraintKind
    source: str


ANY_JSON_OBJECT = Constraint("json_schema", '{"type": "object"}')


def lark_json(schema: dict[str, Any]) -> str:
    """A JSON schema as a Lark rule body (`%json {...}`), laid out as JSON_LAYOUT says: without it, a schema
    embedded in a Lark grammar allows any whitespace between tokens, and a small model fills it with
    newlines."""
    return "%json " + json.dumps({**schema, "x-guidance": {**JSON_LAYOUT, **schema.get("x-guidance", {})}})


def check_constraint(constraint: Constraint) -> None:
    """Raise ConstraintError, saying what is wrong or unsupported, unless the engine can enforce it."""
    grammar_of(constraint)


@functools.lru_cache(maxsize=256)
def grammar_of(constraint: Constraint) -> str:
    """The llguidance grammar of a constraint, checked (ConstraintError); cached by source."""
    if constraint.kind == "json_schema":
        try:
            schema = json.loads(constraint.source)
        except ValueError as exc:
            raise ConstraintError(f"the JSON schema is not valid JSON: {exc}") from exc
        if not isinstance(schema, dict | bool):
            raise ConstraintError("a JSON schema must be an object (or true or false)")
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(constraint.source, defaults=JSON_LAYOUT)
        except ValueError as exc:
            raise ConstraintError(f"the JSON schema cannot be read: {exc}") from exc
    else:
        grammar = llguidance.LLMatcher.grammar_from_lark(constraint.source)
    error = llguidance.LLMatcher.validate_grammar(grammar)
    if error:
        raise ConstraintError(error.strip())
    return grammar
