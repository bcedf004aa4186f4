"""Cache keys: a hash of the namespace, the kind and a canonical form of the request payload."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

PREFIX = "llmapi:cache:"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def cache_key(namespace: str, kind: str, payload: Mapping[str, Any]) -> str:
    """The key of `payload` for `kind` in `namespace`; the namespace is hashed, never shown."""
    canonical = orjson.dumps([namespace, kind, _canonical(payload)], option=orjson.OPT_SORT_KEYS)
    return f"{PREFIX}{kind}:{hashlib.sha256(canonical).hexdigest()}"


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and _INT64_MIN <= value <= _INT64_MAX:
        return int(value)
    if isinstance(value, Mapping):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    return value
