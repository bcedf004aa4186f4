"""Tool calls read out of a model's text: Hermes-style blocks
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>` anywhere in the answer, or the Llama 3 form, a JSON
object `{"name": ..., "parameters": {...}}` (or a list of them) as the whole answer. Only functions the
request offered count as calls; anything else stays text.

`ToolCallReader` reads a stream: text that might still become a call (a partial `<tool_call>`, an answer that
starts as JSON) is held back until it can be told, so a stream and a whole answer read the same."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from llmapi.protocol.chat import ToolCall, ToolCallFunction

OPEN, CLOSE = "<tool_call>", "</tool_call>"
PYTHON_TAG = "<|python_tag|>"


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True, slots=True)
class ReadAnswer:
    content: str | None
    tool_calls: list[ToolCall]


class ToolCallReader:
    """Text pieces in, content and whole calls out (`feed` and `finish` return them in order)."""

    def __init__(self, names: Collection[str], *, parallel: bool = True) -> None:
        self._names = frozenset(names)
        self._parallel = parallel
        self._buffer = ""
        self._whitespace = ""  # held until content follows it: none between or after calls
        self._in_call = False
        self._started = False  # past the answer's start (it can no longer be one JSON call)
        self._whole = False  # the answer started as JSON: held to its end
        self.calls = 0

    def feed(self, text: str) -> list[str | ToolCall]:
        self._buffer += text
        if self._whole:
            return []
        if not self._started:
            stripped = self._buffer.lstrip()
            if not stripped or (len(stripped) < len(PYTHON_TAG) and PYTHON_TAG.startswith(stripped)):
                return []
            self._started = True
            if stripped[0] in "{[" or stripped.startswith(PYTHON_TAG):
                self._whole = True
                return []
        return self._blocks(final=False)

    def finish(self) -> list[str | ToolCall]:
        if self._whole or not self._started:
            text, self._buffer = self._buffer, ""
            calls = self._whole_calls(text)
            return self._counted(calls) if calls else self._content(text)
        out = self._blocks(final=True)
        if self._in_call:  # a call the model never closed: a call if it is whole JSON, else text
            out += self._call_or_text(self._buffer, raw=OPEN + self._buffer)
        else:
            out += self._content(self._buffer)
        self._buffer = ""
        return out

    def _blocks(self, *, final: bool) -> list[str | ToolCall]:
        out: list[str | ToolCall] = []
        while True:
            if self._in_call:
                end = self._buffer.find(CLOSE)
                if end < 0:
                    return out
                body, self._buffer = self._buffer[:end], self._buffer[end + len(CLOSE) :]
                self._in_call = False
                out += self._call_or_text(body, raw=OPEN + body + CLOSE)
                continue
            start = self._buffer.find(OPEN)
            if start >= 0:
                out += self._content(self._buffer[:start])
                self._buffer = self._buffer[start + len(OPEN) :]
                self._in_call = True
                continue
            keep = 0 if final else _partial_suffix(self._buffer, OPEN)
            out += self._content(self._buffer[: len(self._buffer) - keep])
            self._buffer = self._buffer[len(self._buffer) - keep :]
            return out

    def _content(self, text: str) -> list[str | ToolCall]:
        if not text.strip():
            self._whitespace += text
            return []
        body = text.rstrip()
        text, self._whitespace = self._whitespace + body, text[len(body) :]
        return [text]

    def _call_or_text(self, body: str, *, raw: str) -> list[str | ToolCall]:
        call = self._call(_json(body))
        if call is None:
            return self._content(raw)
        self._whitespace = ""
        return self._counted([call])

    def _counted(self, calls: list[ToolCall]) -> list[str | ToolCall]:
        """The calls, but one in all when parallel calls are off (the rest are dropped)."""
        if not self._parallel:
            calls = calls[: 1 - min(self.calls, 1)]
        self.calls += len(calls)
        return list(calls)

    def _whole_calls(self, text: str) -> list[ToolCall] | None:
        value = _json(text.strip().removeprefix(PYTHON_TAG))
        items = value if isinstance(value, list) else [value]
        calls = [self._call(item) for item in items]
        if not calls or any(call is None for call in calls):
            return None
        return [call for call in calls if call is not None]

    def _call(self, value: Any) -> ToolCall | None:
        """`value` as a call of an offered function (None if it is not one, or one too many)."""
        if not isinstance(value, dict) or value.get("name") not in self._names:
            return None
        arguments = value.get("arguments", value.get("parameters", {}))
        if isinstance(arguments, str):
            arguments = _json(arguments)
        if not isinstance(arguments, dict):
            return None
        text = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
        return ToolCall(id=new_call_id(), function=ToolCallFunction(name=value["name"], arguments=text))


def read_answer(text: str, names: Collection[str], *, parallel: bool = True) -> ReadAnswer:
    """A whole answer's content (None when it is only calls) and calls."""
    reader = ToolCallReader(names, parallel=parallel)
    pieces = reader.feed(text) + reader.finish()
    content = "".join(p for p in pieces if isinstance(p, str))
    calls = [p for p in pieces if isinstance(p, ToolCall)]
    return ReadAnswer(content=content or (None if calls else ""), tool_calls=calls)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _partial_suffix(text: str, tag: str) -> int:
    """The length of the longest end of `text` that `tag` starts with."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
