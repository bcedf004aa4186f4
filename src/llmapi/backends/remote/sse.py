"""An incremental decoder for Server-Sent Events (text/event-stream), as remote engines stream them.

It works on bytes: in UTF-8 no byte of a multi-byte character is CR or LF, so lines split safely before
decoding, and an event's data goes on as the bytes the upstream sent.
"""

from __future__ import annotations

import re

_LINE_END = re.compile(rb"\r\n|\r|\n")


class SSEError(ValueError):
    """The stream is not a usable event stream."""


class SSEDecoder:
    """Turns the bytes of an event stream into the `data` of each event, however the bytes were split.

    Follows the WHATWG rules: lines end in CRLF, LF or CR; a blank line ends an event; lines starting
    with ':' are comments; several `data` lines in one event are joined with a newline. Fields other
    than `data` (event, id, retry) are ignored.
    """

    def __init__(self, *, max_event_chars: int = 16 * 1024 * 1024) -> None:
        self._max_event_chars = max_event_chars
        self._buffer = b""
        self._data: list[bytes] = []
        self._data_chars = 0
        self._after_cr = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """The data of every event completed by this chunk, in order."""
        if not chunk:
            return []
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        # A CR at the end may be the first half of a CRLF split across reads.
        self._after_cr = chunk.endswith(b"\r")
        lines = _LINE_END.split(self._buffer + chunk)
        self._buffer = lines.pop()
        if len(self._buffer) + self._data_chars > self._max_event_chars:
            raise SSEError(f"an event is longer than {self._max_event_chars} characters")
        return [data for line in lines if (data := self._line(line)) is not None]

    def flush(self) -> list[bytes]:
        """At the end of the stream: the event left open if the upstream did not end it with a blank line."""
        lines = [*_LINE_END.split(self._buffer), b""]
        self._buffer = b""
        return [data for line in lines if (data := self._line(line)) is not None]

    def _line(self, line: bytes) -> bytes | None:
        if not line:
            if not self._data:
                return None
            data = b"\n".join(self._data)
            self._data = []
            self._data_chars = 0
            return data
        if line[:1] == b":":
            return None
        name, _, value = line.partition(b":")
        if name == b"data":
            value = value.removeprefix(b" ")
            self._data.append(value)
            self._data_chars += len(value) + 1
            if self._data_chars > self._max_event_chars:
                raise SSEError(f"an event is longer than {self._max_event_chars} characters")
        return None
