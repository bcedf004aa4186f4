"""An incremental decoder for Server-Sent Events (text/event-stream), as remote engines stream them."""

from __future__ import annotations

import codecs
import re

_LINE_END = re.compile(r"\r\n|\r|\n")


class SSEError(ValueError):
    """The stream is not a usable event stream."""


class SSEDecoder:
    """Turns the bytes of an event stream into the `data` of each event, however the bytes were split.

    Follows the WHATWG rules: lines end in CRLF, LF or CR; a blank line ends an event; lines starting
    with ':' are comments; several `data` lines in one event are joined with a newline. Fields other
    than `data` (event, id, retry) are ignored.
    """

    def __init__(self, *, max_event_chars: int = 16 * 1024 * 1024) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._max_event_chars = max_event_chars
        self._buffer = ""
        self._data: list[str] = []
        self._data_chars = 0
        self._after_cr = False

    def feed(self, chunk: bytes) -> list[str]:
        """The data of every event completed by this chunk, in order."""
        text = self._utf8.decode(chunk)
        if not text:
            return []
        if self._after_cr and text[0] == "\n":
            text = text[1:]
        # A CR at the end may be the first half of a CRLF split across reads.
        self._after_cr = text.endswith("\r")
        lines = _LINE_END.split(self._buffer + text)
        self._buffer = lines.pop()
        if len(self._buffer) + self._data_chars > self._max_event_chars:
            raise SSEError(f"an event is longer than {self._max_event_chars} characters")
        return [data for line in lines if (data := self._line(line)) is not None]

    def flush(self) -> list[str]:
        """At the end of the stream: the event left open if the upstream did not end it with a blank line."""
        tail = self._utf8.decode(b"", final=True)
        lines = [*_LINE_END.split(self._buffer + tail), ""]
        self._buffer = ""
        return [data for line in lines if (data := self._line(line)) is not None]

    def _line(self, line: str) -> str | None:
        if not line:
            if not self._data:
                return None
            data = "\n".join(self._data)
            self._data = []
            self._data_chars = 0
            return data
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if name == "data":
            value = value.removeprefix(" ")
            self._data.append(value)
            self._data_chars += len(value) + 1
            if self._data_chars > self._max_event_chars:
                raise SSEError(f"an event is longer than {self._max_event_chars} characters")
        return None
