"""Reading what an OpenAI-compatible engine answers: a completion stream, or an embeddings body."""

from __future__ import annotations

import base64
import logging
import sys
from array import array
from typing import Any

import orjson

from llmapi.backends.base import Embeddings, GenerationChunk
from llmapi.backends.remote.sse import SSEDecoder
from llmapi.backends.remote.upstream_errors import UpstreamErrors
from llmapi.types import FinishReason

logger = logging.getLogger(__name__)


class CompletionStream:
    """Turns the body of a streamed chat or text completion into text deltas and one final chunk.

    Feed it the bytes as they arrive; `finish()` at the end of the body gives the chunk with the finish
    reason and the token counts of the usage event. A non-streamed completion body works too, as one event.
    """

    def __init__(self, *, chat: bool, errors: UpstreamErrors) -> None:
        self._chat = chat
        self._errors = errors
        self._sse = SSEDecoder()
        self._finish_reason: FinishReason | None = None
        self._usage: tuple[int, int] | None = None
        self._done = False

    def feed(self, data: bytes) -> list[str]:
        return [text for event in self._sse.feed(data) if (text := self._event(event))]

    def feed_document(self, body: bytes) -> list[str]:
        text = self._event(body)
        return [text] if text else []

    def finish(self) -> GenerationChunk:
        text = "".join(event_text for event in self._sse.flush() if (event_text := self._event(event)))
        if self._finish_reason is None and not self._done:
            raise self._errors.broken("the stream ended before the generation finished")
        if self._usage is None:
            logger.debug("model %s: the upstream sent no usage; reporting 0 tokens", self._errors.model)
        prompt_tokens, completion_tokens = self._usage or (0, 0)
        return GenerationChunk(
            text,
            finish_reason=self._finish_reason or "stop",
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    def _event(self, data: str | bytes) -> str:
        if self._done:
            return ""
        if data in ("[DONE]", b"[DONE]"):
            self._done = True
            return ""
        event = _json_object(data, self._errors, "an event")
        if event.get("error"):
            raise self._errors.from_event(event)
        usage = event.get("usage")
        if usage is not None:
            self._usage = (
                _count(usage, "prompt_tokens", self._errors),
                _count(usage, "completion_tokens", self._errors),
            )
        choices = event.get("choices") or []
        if not isinstance(choices, list):
            raise self._errors.broken("'choices' is not a list")
        return "".join(self._choice(choice) for choice in choices)

    def _choice(self, choice: Any) -> str:
        if not isinstance(choice, dict):
            raise self._errors.broken("a choice is not an object")
        if choice.get("index", 0) != 0:
            return ""
        reason = choice.get("finish_reason")
        if reason:
            self._finish_reason = "length" if reason == "length" else "stop"
        message = (choice.get("delta") or choice.get("message") or {}) if self._chat else choice
        text = message.get("content" if self._chat else "text") if isinstance(message, dict) else message
        if text is not None and not isinstance(text, str):
            raise self._errors.broken("a choice's text is not a string")
        return text or ""


def parse_embeddings(body: bytes, expected: int, errors: UpstreamErrors) -> Embeddings:
    """The vectors of an embeddings body, in input order (by `index`), and the prompt tokens it reports."""
    document = _json_object(body, errors, "the embeddings body")
    if document.get("error"):
        raise errors.from_event(document)
    data = document.get("data")
    if not isinstance(data, list) or len(data) != expected:
        raise errors.broken(f"expected {expected} embeddings in 'data'")
    vectors: list[list[float] | None] = [None] * expected
    for item in data:
        index = item.get("index") if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < expected or vectors[index] is not None:
            raise errors.broken("the embeddings' indexes do not match the inputs")
        vectors[index] = _vector(item.get("embedding"), errors)
    usage = document.get("usage")
    if usage is None:
        logger.debug("model %s: the upstream sent no usage; reporting 0 tokens", errors.model)
    prompt_tokens = 0 if usage is None else _count(usage, "prompt_tokens", errors)
    return Embeddings(vectors=[v for v in vectors if v is not None], prompt_tokens=prompt_tokens)


def _vector(value: Any, errors: UpstreamErrors) -> list[float]:
    if isinstance(value, str):
        # Some engines answer base64 even when asked for floats: little-endian float32.
        try:
            packed = array("f", base64.b64decode(value, validate=True))
        except ValueError:
            raise errors.broken("an embedding is neither a list of numbers nor base64 float32") from None
        if sys.byteorder == "big":
            packed.byteswap()
        return packed.tolist()
    if not isinstance(value, list) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in value
    ):
        raise errors.broken("an embedding is not a list of numbers")
    return [float(x) for x in value]


def _json_object(data: str | bytes, errors: UpstreamErrors, what: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise errors.broken(f"{what} is not JSON: {data[:200]!r}") from None
    if not isinstance(parsed, dict):
        raise errors.broken(f"{what} is not a JSON object")
    return parsed


def _count(usage: Any, key: str, errors: UpstreamErrors) -> int:
    value = usage.get(key, 0) if isinstance(usage, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise errors.broken(f"usage.{key} is not a count")
    return value
