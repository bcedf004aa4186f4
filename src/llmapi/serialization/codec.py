"""What every wire format does: bytes to a JSON-shaped dict, and back.

The dicts are exactly what the JSON API takes and returns (field names as in JSON), so one pydantic
validation serves every format. `message` names the Protobuf message of the body (e.g.
"ChatCompletionRequest", "ChatCompletion", "ErrorResponse"); formats that need no schema ignore it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class CodecError(ValueError):
    """The body is not valid in its format; the message says what is wrong, for a 400."""


class Codec(Protocol):
    media_type: str

    def decode(self, body: bytes, *, message: str) -> dict[str, Any]:
        """Parse a request body into a JSON-shaped dict, or raise CodecError."""
        ...

    def encode(self, data: Mapping[str, Any], *, message: str) -> bytes:
        """Serialize a JSON-shaped response dict (as the JSON API would return it)."""
        ...
