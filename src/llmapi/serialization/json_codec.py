"""application/json, with orjson."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from llmapi.serialization.codec import DEFAULT_MAX_ITEMS, CodecError, check_max_items, items_limit_error

DEFAULT_MAX_DEPTH = 32


def nesting_depth(value: object) -> int:
    """How deeply dicts and lists nest in `value`: 0 for a scalar, 1 for a flat dict or list (even empty)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def check_shape(value: object, *, max_depth: int, max_items: int) -> None:
    """Raise CodecError at the first dict or list nested deeper than `max_depth` (as `nesting_depth` counts)
    or list of more than `max_items` items, before walking its children; iterative, so any depth is safe."""
    stack: list[tuple[object, int, str | None]] = [(value, 1, None)]
    while stack:
        node, depth, field = stack.pop()
        if depth > max_depth:
            raise depth_limit_error(max_depth)
        if isinstance(node, dict):
            stack.extend(
                (child, depth + 1, key) for key, child in node.items() if isinstance(child, dict | list)
            )
        elif isinstance(node, list):
            if len(node) > max_items:
                raise items_limit_error(max_items, field)
            stack.extend((child, depth + 1, field) for child in node if isinstance(child, dict | list))


def depth_limit_error(max_depth: int) -> CodecError:
    return CodecError(f"the body nests objects and arrays deeper than the limit of {max_depth} levels")


class JSONCodec:
    media_type = "application/json"

    def __init__(self, *, max_depth: int = DEFAULT_MAX_DEPTH, max_items: int = DEFAULT_MAX_ITEMS) -> None:
        if max_depth < 1:
            raise ValueError(f"max_depth must be at least 1, got {max_depth}")
        self.max_depth = max_depth
        self.max_items = check_max_items(max_items)

    def decode(self, body: bytes, *, message: str) -> dict[str, Any]:
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise self._parse_error(body, exc) from None
        if not isinstance(value, dict):
            raise CodecError("the body must be a JSON object")
        check_shape(value, max_depth=self.max_depth, max_items=self.max_items)
        return value

    def encode(self, data: Mapping[str, Any], *, message: str) -> bytes:
        return orjson.dumps(data if isinstance(data, dict) else dict(data))

    def _parse_error(self, body: bytes, exc: orjson.JSONDecodeError) -> CodecError:
        if "depth limit" in exc.msg or "recursion" in exc.msg.lower():
            return depth_limit_error(self.max_depth)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            return CodecError(f"the body is not valid UTF-8 (byte {bad.start}); send JSON encoded as UTF-8")
        return CodecError(f"the body is not valid JSON: {exc}")
