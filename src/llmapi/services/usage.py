"""Usage accounting off the hot path: requests note usage in memory; a background task writes batches."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from llmapi.db.repositories.usage import UsageRecordData as UsageEvent

__all__ = ["UsageEvent", "UsageNote", "UsageRecorder"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class UsageNote:
    """Filled in by a request's handler (or its stream, when it ends); read when the response is done."""

    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    cut_short: bool = False
    """The answer stopped before its end after it started: a stream that failed, or whose client left."""

    def count(self, *, model: str, prompt_tokens: int, completion_tokens: int = 0) -> None:
        self.model, self.prompt_tokens, self.completion_tokens = model, prompt_tokens, completion_tokens

    def count_cached(self, *, model: str, prompt_tokens: int) -> None:
        """An answer from the response cache: a request, but no generated tokens."""
        self.count(model=model, prompt_tokens=prompt_tokens)
        self.cached = True


WriteBatch = Callable[[Sequence[UsageEvent]], Awaitable[None]]


class UsageRecorder:
    """Buffers usage events and writes them in batches every `interval` seconds (and at close).

    `record` never waits. If the database falls behind by more than `max_pending` events, the oldest are
    dropped and counted, so a slow database cannot grow memory without bound. A batch that fails
    `max_attempts` times in a row is written record by record, and the records the database refuses are
    dropped and counted, so one bad record cannot hold up the rest.
    """

    def __init__(
        self,
        write: WriteBatch,
        *,
        interval: float = 1.0,
        max_batch: int = 1000,
        max_pending: int = 100_000,
        max_attempts: int = 3,
    ):
        self._write = write
        self._interval = interval
        self._max_batch = max_batch
        self._pending: deque[UsageEvent] = deque(maxlen=max_pending)
        self._max_attempts = max_attempts
        self._failures = 0
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def record(self, event: UsageEvent) -> None:
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
        self._pending.append(event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-recorder")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        while self._pending:
            batch = [self._pending.popleft() for _ in range(min(self._max_batch, len(self._pending)))]
            try:
                await self._write(batch)
                self._failures = 0
            except Exception:
                self._failures += 1
                if self._failures < self._max_attempts:
                    logger.exception("writing %d usage records failed; they are retried", len(batch))
                    self._pending.extendleft(reversed(batch))
                    return
                await self._write_one_by_one(batch)

    async def _write_one_by_one(self, batch: Sequence[UsageEvent]) -> None:
        """After repeated failures, find the records the database refuses: drop them, keep the rest."""
        for event in batch:
            try:
                await self._write([event])
            except Exception:
                self.dropped += 1
                logger.exception("a usage record was refused by the database and dropped: %r", event)
        self._failures = 0

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()
