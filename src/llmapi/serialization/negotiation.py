"""Content negotiation: the request's format from `Content-Type`, the response's from `Accept` (q-values)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

JSON = "application/json"
XML = "application/xml"
PROTOBUF = "application/x-protobuf"

# Spellings each format answers to; the first is the one responses carry.
_ALIASES: dict[str, tuple[str, ...]] = {
    JSON: (JSON, "text/event-stream"),
    XML: (XML, "text/xml"),
    PROTOBUF: (PROTOBUF, "application/protobuf"),
}
SUPPORTED = tuple(_ALIASES)


@dataclass(frozen=True, slots=True)
class _Range:
    type: str
    subtype: str
    q: float

    def specificity(self, media_type: str) -> int | None:
        """How closely this range matches `media_type` (2 exact, 1 `type/*`, 0 `*/*`), None if not at all."""
        type_, subtype = media_type.split("/", 1)
        if self.type == "*" and self.subtype == "*":
            return 0
        if self.type == type_ and self.subtype == "*":
            return 1
        if (self.type, self.subtype) == (type_, subtype):
            return 2
        return None


def request_format(content_type: str | None) -> str | None:
    """The format a body in `content_type` is in (no header: JSON), or None when it is not supported."""
    if not content_type:
        return JSON
    media_type = content_type.split(";", 1)[0].strip().lower()
    return next((name for name, aliases in _ALIASES.items() if media_type in aliases), None)


def response_format(accept: str | None) -> str | None:
    """The supported format `accept` likes best (no header or `*/*`: JSON); None when it allows none.

    Each format takes the q of the most specific range that matches it; ties go to JSON, then XML. Clients
    send the same few headers again and again: short ones are remembered."""
    if accept is None or len(accept) > _REMEMBERED_CHARS:
        return _best_format(accept)
    return _remembered_best_format(accept)


_REMEMBERED_CHARS = 256


def _best_format(accept: str | None) -> str | None:
    ranges = _parse(accept or "")
    if not ranges:
        return JSON
    best, best_q = None, 0.0
    for name, aliases in _ALIASES.items():
        q = _quality(ranges, aliases)
        if q > best_q:
            best, best_q = name, q
    return best


_remembered_best_format = functools.lru_cache(maxsize=512)(_best_format)


def _quality(ranges: list[_Range], aliases: tuple[str, ...]) -> float:
    matches = [(spec, r.q) for r in ranges for alias in aliases if (spec := r.specificity(alias)) is not None]
    if not matches:
        return 0.0
    most_specific = max(spec for spec, _ in matches)
    return max(q for spec, q in matches if spec == most_specific)


def _parse(accept: str) -> list[_Range]:
    ranges = []
    for item in accept.split(","):
        media_type, *params = (part.strip() for part in item.split(";"))
        if "/" not in media_type:
            continue
        type_, subtype = media_type.lower().split("/", 1)
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranges.append(_Range(type_, subtype, q))
    return ranges
