"""Requests passed through to an upstream as the client sent them, metered like any other: usage from the
upstream's own counts, whole answers through the response cache."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Mapping
from contextlib import aclosing
from typing import Any

from llmapi.backends.base import Counts, PassThroughBackend, StreamTally
from llmapi.services.metering import Counted, Meter, MeteredBackend


class ForwardedBody(Counted):
    """What the cache keeps of a passed-through answer: the body as the client got it."""

    body: str


class Forwarding(MeteredBackend[PassThroughBackend]):
    """How one request is passed through. `prompt_estimate` is charged where the upstream gives no usage."""

    def __init__(
        self, backend: PassThroughBackend, *, meter: Meter | None = None, prompt_estimate: int
    ) -> None:
        super().__init__(backend, meter=meter)
        self._prompt_estimate = prompt_estimate

    def forward(
        self, path: str, document: Mapping[str, Any], *, stream: bool
    ) -> Coroutine[Any, Any, bytes] | AsyncIterator[bytes]:
        return self.stream(path, document) if stream else self.answer(path, document)

    async def answer(self, path: str, document: Mapping[str, Any]) -> bytes:
        async def work() -> ForwardedBody:
            forwarded = await self.backend.forward(path, document)
            counts = forwarded.counts or Counts(self._prompt_estimate)
            return ForwardedBody(
                prompt_tokens=counts.prompt_tokens,
                completion_tokens=counts.completion_tokens,
                body=forwarded.body.decode(),
            )

        return (await self.meter.answer(ForwardedBody, work)).body.encode()

    async def stream(self, path: str, document: Mapping[str, Any]) -> AsyncGenerator[bytes, None]:
        """Each event's `data` as the client gets it. Until the upstream's usage arrives, the stream counts
        as its prompt estimate and one token a chunk, so a client that leaves early is charged for what it
        got; the usage note says the answer was cut short until the last event is out."""
        tally = StreamTally()
        self.meter.usage.cut_short = True
        try:
            async with aclosing(self.backend.forward_stream(path, document, tally)) as events:
                async for event in events:
                    yield event
        finally:
            counts = tally.counts or Counts(self._prompt_estimate, tally.pieces)
            self.meter.count(counts.prompt_tokens, counts.completion_tokens)
        self.meter.usage.cut_short = False
