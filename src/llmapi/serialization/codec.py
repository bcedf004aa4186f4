"""What every wire format does: bytes to a JSON-shaped dict, and back.

The dicts are exactly what the JSON API takes and returns (field names as in JSON), so one pydantic
validation serves every format. `message` names the Protobuf message of the body (e.g.
"ChatCompletionRequest", "ChatCompletion", "ErrorResponse"); formats that need no schema ignore it.

Every codec refuses a list of more than `max_items` items (DEFAULT_MAX_ITEMS unless told), counting while it
parses or before it converts, so a hostile body of millions of tiny items is turned away before it costs much.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

# No request field holds more items: the longest lists are token ids, at most 131,072; messages and inputs are
# at most 2,048.
DEFAULT_MAX_ITEMS = 131_072


class CodecError(ValueError):
    """The body is not valid in its format; the message says what is wrong, for a 400."""


def items_limit_error(max_items: int, field: str | None = None) -> CodecError:
    """The refusal of a list longer than `max_items`; `field` names the field that holds it, where known."""
    where = "a list" if field is None else f"the field {field!r}"
    return CodecError(f"{where} holds more than {max_items:,} items; split the request")


def check_max_items(max_items: int) -> int:
    """`max_items` as a codec takes it, or ValueError."""
    if max_items < 1:
        raise ValueError(f"max_items must be at least 1, got {max_items}")
    return max_items


class Codec(Protocol):
    media_type: str

    def decode(self, body: bytes, *, message: str) -> dict[str, Any]:
        """Parse a request body into a JSON-shaped dict, or raise CodecError."""
        ...

    def encode(self, data: Mapping[str, Any], *, message: str) -> bytes:
        """Serialize a JSON-shaped response dict (as the JSON API would return it)."""
        ...
