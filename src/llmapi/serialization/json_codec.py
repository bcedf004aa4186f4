"""application/json, with orjson; bodies of many small values with the standard library's pure-Python
parser, which lets other threads run while it works.

One orjson call holds the interpreter lock to its end: about 220 ns per nested array and 50 ns per short
string (measured on 4 MiB bodies), so a 4 MiB body of tiny arrays holds every other thread, the event loop
included, for 370 ms. A body that may hold more than `_FAST_CONTAINERS` objects and arrays or
`_FAST_ITEMS` values (counted from its brackets and commas, an upper bound) is parsed in Python instead:
slower, but it never holds the lock for more than an instant.
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from llmapi.serialization.codec import DEFAULT_MAX_ITEMS, CodecError, check_max_items, items_limit_error

DEFAULT_MAX_DEPTH = 32
_FAST_CONTAINERS = 32_768
_FAST_ITEMS = 262_144
# What the Python parser builds at most: collecting or freeing more at once would itself hold the lock too
# long (30 ms for half a million arrays). 2,048 chat messages of 63 content parts each still fit.
_MAX_CONTAINERS = DEFAULT_MAX_ITEMS


def check_shape(value: object, *, max_depth: int, max_items: int) -> None:
    """Raise CodecError at the first dict or list nested deeper than `max_depth` (a flat dict or list is 1
    deep) or list of more than `max_items` items, before walking its children; iterative, so any depth is
    safe."""
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
        if body.count(b"{") + body.count(b"[") > _FAST_CONTAINERS or body.count(b",") > _FAST_ITEMS:
            value = self._parse_in_python(body)
        else:
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

    def _parse_in_python(self, body: bytes) -> Any:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise _not_utf8(bad) from None
        decoder = json.JSONDecoder(parse_constant=_no_constant)
        containers = 0

        def counted(parse: Callable[..., tuple[Any, int]]) -> Callable[..., tuple[Any, int]]:
            def parse_counted(*args: Any, **kwargs: Any) -> tuple[Any, int]:
                nonlocal containers
                containers += 1
                if containers > _MAX_CONTAINERS:
                    raise CodecError(f"the body holds more than {_MAX_CONTAINERS:,} objects and arrays")
                value, end = parse(*args, **kwargs)
                if isinstance(value, list) and len(value) > self.max_items:
                    raise items_limit_error(self.max_items)
                return value, end

            return parse_counted

        decoder.parse_object = counted(decoder.parse_object)  # type: ignore[attr-defined]
        decoder.parse_array = counted(decoder.parse_array)  # type: ignore[attr-defined]
        decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
        try:
            return decoder.decode(text)
        except RecursionError:
            raise depth_limit_error(self.max_depth) from None
        except CodecError:
            raise
        except ValueError as exc:
            raise CodecError(f"the body is not valid JSON: {exc}") from None

    def _parse_error(self, body: bytes, exc: orjson.JSONDecodeError) -> CodecError:
        if "depth limit" in exc.msg or "recursion" in exc.msg.lower():
            return depth_limit_error(self.max_depth)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            return _not_utf8(bad)
        return CodecError(f"the body is not valid JSON: {exc}")


def _not_utf8(bad: UnicodeDecodeError) -> CodecError:
    return CodecError(f"the body is not valid UTF-8 (byte {bad.start}); send JSON encoded as UTF-8")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
