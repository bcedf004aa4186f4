"""Requests passed through to an upstream as the client sent them, metered like any other: usage from the
upstream's own counts, whole answers through the response cache. When the model's upstream cannot answer
(it fails with a 5xx, times out or cannot be reached) before anything was sent to the client, its fallback
models are tried in order; the usage and `x-llmapi-model` name the model that answered."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

from llmapi.backends.base import Counts, PassThroughBackend, StreamTally
from llmapi.errors import APIError, ServiceUnavailableError, UpstreamError
from llmapi.services.metering import Counted, Meter, MeteredBackend

logger = logging.getLogger(__name__)


class ForwardedBody(Counted):
    """What the cache keeps of a passed-through answer: the body as the client got it."""

    body: str


class Forwarding(MeteredBackend[PassThroughBackend]):
    """How one request is passed through. `prompt_estimate` is charged where the upstream gives no usage."""

    def __init__(
        self,
        backend: PassThroughBackend,
        *,
        meter: Meter | None = None,
        prompt_estimate: int,
        fallbacks: Sequence[PassThroughBackend] = (),
    ) -> None:
        super().__init__(backend, meter=meter)
        self._prompt_estimate = prompt_estimate
        self._candidates = (backend, *fallbacks)

    def forward(
        self, path: str, document: Mapping[str, Any], *, stream: bool
    ) -> Coroutine[Any, Any, bytes] | AsyncIterator[list[bytes]]:
        return self.stream(path, document) if stream else self.answer(path, document)

    async def answer(self, path: str, document: Mapping[str, Any]) -> bytes:
        async def work() -> ForwardedBody:
            for backend in self._tried():
                try:
                    forwarded = await backend.forward(path, document)
                except _CANNOT_ANSWER as failure:
                    self._give_up_on(backend, failure)
                    continue
                counts = forwarded.counts or Counts(self._prompt_estimate)
                return ForwardedBody(
                    model=backend.card.id,
                    prompt_tokens=counts.prompt_tokens,
                    completion_tokens=counts.completion_tokens,
                    body=forwarded.body.decode(),
                )
            raise AssertionError("the last candidate's failure is raised")

        return (await self.meter.answer(ForwardedBody, work)).body.encode()

    async def stream(self, path: str, document: Mapping[str, Any]) -> AsyncGenerator[list[bytes], None]:
        """The events' `data` as the client gets them, in the batches they arrived in. Until the upstream's
        usage arrives, the stream counts as its prompt estimate and one token an event, so a client that
        leaves early is charged for what it got; the usage note says the answer was cut short until the
        last event is out."""
        tally = StreamTally()
        self.meter.usage.cut_short = True
        try:
            for backend in self._tried():
                async with aclosing(backend.forward_stream(path, document, tally)) as events:
                    try:
                        first = await anext(events, None)
                    except _CANNOT_ANSWER as failure:
                        self._give_up_on(backend, failure)
                        continue
                    if first is not None:
                        yield first
                    async for event in events:
                        yield event
                break
        finally:
            counts = tally.counts or Counts(self._prompt_estimate, tally.pieces)
            self.meter.count(counts.prompt_tokens, counts.completion_tokens)
        self.meter.usage.cut_short = False

    def _tried(self) -> Iterator[PassThroughBackend]:
        """The model's backend, then its fallbacks; each becomes the meter's model as it is tried."""
        for backend in self._candidates:
            self.meter.model = self.meter.usage.model = backend.card.id
            yield backend

    def _give_up_on(self, backend: PassThroughBackend, failure: APIError) -> None:
        if backend is self._candidates[-1]:
            raise failure
        logger.warning("model %s cannot answer (%s); trying a fallback", backend.card.id, failure.message)


# What makes a model's upstream unable to answer (rather than the request bad): then a fallback may.
_CANNOT_ANSWER = (UpstreamError, ServiceUnavailableError)
