"""The client's request as the upstream gets it, and the upstream's answer as the client gets it.

Both are the same JSON as sent, with only `model` renamed (the public id to the upstream's name and back).
A chat or text completion stream gets `stream_options.include_usage`, so that usage is counted from the
upstream's own numbers; the usage chunk this adds is dropped again when the client did not ask for it (a
Responses stream has its usage in its `response.completed` event). llmapi defines no request fields of its
own, so nothing else is added or removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from llmapi.backends.base import Counts, ForwardedAnswer, StreamTally
from llmapi.backends.remote.sse import SSEDecoder
from llmapi.backends.remote.upstream_errors import UpstreamErrors

# The paths whose streams carry usage only when asked for in `stream_options`.
_USAGE_ON_REQUEST = frozenset({"chat/completions", "completions"})
# The events that end a Responses stream (it has no [DONE]).
_LAST_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})


def request_body(document: Mapping[str, Any], *, path: str, upstream_model: str, stream: bool) -> bytes:
    body = {**document, "model": upstream_model}
    if stream and path in _USAGE_ON_REQUEST:
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return orjson.dumps(body)


def client_wants_usage(path: str, document: Mapping[str, Any]) -> bool:
    """Whether the client gets the usage chunk of a stream (asked for, or not one that must be)."""
    options = document.get("stream_options")
    wanted = isinstance(options, dict) and options.get("include_usage") is True
    return wanted or path not in _USAGE_ON_REQUEST


def answer(body: bytes, *, model: str, errors: UpstreamErrors) -> ForwardedAnswer:
    data = _object(body, errors)
    _rename(data, model)
    return ForwardedAnswer(orjson.dumps(data), _counts(data))


class EventStream:
    """An upstream's event stream, event by event, as the client gets it: each `data` payload with `model`
    renamed, without the usage chunk the client did not ask for; what it counts goes in `tally`. `done`
    is whether the upstream ended the stream (`[DONE]`, or a Responses stream's last event).

    Only events that metering reads are parsed (usage, errors, a Responses stream's last event); in the
    others `model` is renamed in the bytes, where the upstream spells it compactly (`"model":"name"`), as
    vLLM, SGLang and OpenAI do. A string inside JSON cannot hold that spelling unescaped, so only keys match.
    """

    def __init__(
        self,
        *,
        model: str,
        upstream_model: str,
        include_usage: bool,
        errors: UpstreamErrors,
        tally: StreamTally,
    ) -> None:
        self._model = model
        self._compact = b'"model":' + orjson.dumps(upstream_model)
        self._renamed = b'"model":' + orjson.dumps(model)
        self._include_usage = include_usage
        self._errors = errors
        self._sse = SSEDecoder()
        self._tally = tally
        self.done = False

    def feed(self, data: bytes) -> list[bytes]:
        return self._events(self._sse.feed(data))

    def finish(self) -> list[bytes]:
        return self._events(self._sse.flush())

    def _events(self, payloads: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for payload in payloads:
            if self.done:
                break
            if payload == b"[DONE]":
                self.done = True
                break
            if self._plain(payload):
                self._tally.pieces += 1
                out.append(payload.replace(self._compact, self._renamed))
            elif (event := self._read(payload)) is not None:
                out.append(event)
        return out

    def _plain(self, payload: bytes) -> bool:
        """Whether metering needs nothing of this event, and its `model` can be renamed in its bytes."""
        if any(marker in payload for marker in _READ_MARKERS):
            return False
        return b'"model"' not in payload or self._compact in payload

    def _read(self, payload: bytes) -> bytes | None:
        data = _object(payload, self._errors)
        usage = _counts(data)
        if usage is not None:
            self._tally.counts = usage
        if data.get("choices") or data.get("delta"):
            self._tally.pieces += 1
        elif usage is not None and not self._include_usage:
            return None
        self.done = data.get("type") in _LAST_EVENTS
        _rename(data, self._model)
        return orjson.dumps(data)


# What in an event makes metering read it: usage, an error, the end of a Responses stream.
_READ_MARKERS = (b'"usage":{', b'"usage": {', *(b'"' + e.encode() + b'"' for e in _LAST_EVENTS))


def _rename(data: dict[str, Any], model: str) -> None:
    """`model` of an answer or chunk, or of the response a Responses event carries."""
    if "model" in data:
        data["model"] = model
    response = data.get("response")
    if isinstance(response, dict) and "model" in response:
        response["model"] = model


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
    """The usage of an answer or chunk (`prompt_tokens`...), or of a Responses answer or event
    (`input_tokens`...)."""
    usage = data.get("usage")
    response = data.get("response")
    if usage is None and isinstance(response, dict):
        usage = response.get("usage")
    if not isinstance(usage, dict):
        return None
    if "input_tokens" in usage:
        return Counts(_count(usage.get("input_tokens")), _count(usage.get("output_tokens")))
    return Counts(_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
