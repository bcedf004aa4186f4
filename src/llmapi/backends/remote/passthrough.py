"""The client's request as the upstream gets it, and the upstream's answer as the client gets it.

Both are the same JSON as sent, with only `model` renamed (the public id to the upstream's name and back).
A stream gets `stream_options.include_usage`, so that usage is counted from the upstream's own numbers; the
usage chunk this adds is dropped again when the client did not ask for it. llmapi defines no request
fields of its own, so nothing else is added or removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from llmapi.backends.base import Counts, ForwardedAnswer, StreamTally
from llmapi.backends.remote.sse import SSEDecoder
from llmapi.backends.remote.upstream_errors import UpstreamErrors


def request_body(document: Mapping[str, Any], *, upstream_model: str, stream: bool) -> bytes:
    body = {**document, "model": upstream_model}
    if stream:
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return orjson.dumps(body)


def client_wants_usage(document: Mapping[str, Any]) -> bool:
    options = document.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def answer(body: bytes, *, model: str, errors: UpstreamErrors) -> ForwardedAnswer:
    data = _object(body, errors)
    if "model" in data:
        data["model"] = model
    return ForwardedAnswer(orjson.dumps(data), _counts(data))


class EventStream:
    """An upstream's event stream, event by event, as the client gets it: each `data` payload with `model`
    renamed, without the usage chunk the client did not ask for; what it counts goes in `tally`. `done`
    is whether the upstream ended the stream with `[DONE]`."""

    def __init__(
        self, *, model: str, include_usage: bool, errors: UpstreamErrors, tally: StreamTally
    ) -> None:
        self._model = model
        self._include_usage = include_usage
        self._errors = errors
        self._sse = SSEDecoder()
        self._tally = tally
        self.done = False

    def feed(self, data: bytes) -> list[bytes]:
        return self._events(self._sse.feed(data))

    def finish(self) -> list[bytes]:
        return self._events(self._sse.flush())

    def _events(self, payloads: list[str]) -> list[bytes]:
        out: list[bytes] = []
        for payload in payloads:
            if self.done:
                break
            if payload == "[DONE]":
                self.done = True
                break
            data = _object(payload.encode(), self._errors)
            usage = _counts(data)
            if usage is not None:
                self._tally.counts = usage
            choices = data.get("choices")
            if choices:
                self._tally.pieces += 1
            elif usage is not None and not self._include_usage:
                continue
            if "model" in data:
                data["model"] = self._model
            out.append(orjson.dumps(data))
        return out


def _object(body: bytes, errors: UpstreamErrors) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.broken(f"its answer is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise errors.broken("its answer is not a JSON object")
    if "error" in data and "choices" not in data and "data" not in data:
        raise errors.from_event(data)
    return data


def _counts(data: Mapping[str, Any]) -> Counts | None:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    return Counts(_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
