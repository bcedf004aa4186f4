from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from llmapi.services.usage import UsageEvent, UsageRecorder


def event(model: str) -> UsageEvent:
    return UsageEvent(
        at=datetime.now(UTC),
        principal_id="p",
        principal_kind="api_key",
        model=model,
        endpoint="/v1/completions",
        prompt_tokens=1,
        completion_tokens=2,
        latency_ms=3.0,
        status_code=200,
    )


class Database:
    """Stores events, but refuses any batch holding a model named 'poison' (as PostgreSQL refuses NUL)."""

    def __init__(self) -> None:
        self.stored: list[str] = []

    async def write(self, batch: Sequence[UsageEvent]) -> None:
        if any(e.model == "poison" for e in batch):
            raise ValueError("invalid byte sequence")
        self.stored += [e.model for e in batch]


async def test_a_failed_batch_is_kept_and_retried() -> None:
    failing = True

    async def write(batch: Sequence[UsageEvent]) -> None:
        if failing:
            raise ConnectionError("database down")
        stored.extend(e.model for e in batch)

    stored: list[str] = []
    recorder = UsageRecorder(write, max_attempts=3)
    recorder.record(event("a"))
    await recorder.flush()
    failing = False
    await recorder.flush()

    assert stored == ["a"]
    assert recorder.dropped == 0


async def test_a_record_the_database_refuses_is_dropped_and_the_rest_written() -> None:
    database = Database()
    recorder = UsageRecorder(database.write, max_attempts=2)
    for model in ("a", "poison", "b"):
        recorder.record(event(model))

    await recorder.flush()  # the first attempt fails: kept for later
    assert database.stored == []
    await recorder.flush()

    assert database.stored == ["a", "b"]
    assert recorder.dropped == 1
    recorder.record(event("c"))
    await recorder.flush()
    assert database.stored == ["a", "b", "c"]
