from __future__ import annotations

from collections.abc import Sequence as TokenIds

import pytest

from llmapi.engine.sampling_params import SamplingParams
from llmapi.engine.scheduled_batch import PrefillChunk, ScheduledBatch
from llmapi.engine.scheduler import Scheduler
from llmapi.engine.sequence import Sequence, SequenceStatus


class CharDecoder:
    def decode(self, token_ids: TokenIds[int], *, skip_special_tokens: bool = False) -> str:
        return "".join(chr(97 + t % 26) for t in token_ids)


def seq(request_id: str, prompt_len: int = 3, max_tokens: int = 4) -> Sequence:
    params = SamplingParams(max_tokens=max_tokens)
    return Sequence(request_id, [1] * prompt_len, params, decoder=CharDecoder(), eos_token_id=None)


def ids(items: TokenIds[Sequence | PrefillChunk]) -> list[str]:
    return [(s.seq if isinstance(s, PrefillChunk) else s).request_id for s in items]


def test_requests_join_between_steps_and_leave_when_finished() -> None:
    scheduler = Scheduler(max_batch_size=4)
    a, b = seq("a", max_tokens=2), seq("b", max_tokens=3)
    scheduler.add(a)
    first = scheduler.schedule()
    assert (ids(first.decode), ids(first.prefill)) == ([], ["a"])
    scheduler.postprocess(first, [5])
    scheduler.add(b)
    second = scheduler.schedule()
    assert (ids(second.decode), ids(second.prefill)) == (["a"], ["b"])
    scheduler.postprocess(second, [5, 5])  # a reaches max_tokens=2 and leaves
    assert ids(scheduler.running) == ["b"]
    assert a.status is SequenceStatus.FINISHED
    assert a.slot is None
    third = scheduler.schedule()
    assert (ids(third.decode), ids(third.prefill)) == (["b"], [])


def test_the_batch_is_bounded_and_freed_slots_are_reused() -> None:
    scheduler = Scheduler(max_batch_size=2)
    for name in "abc":
        scheduler.add(seq(name, max_tokens=1))
    batch = scheduler.schedule()
    assert ids(batch.prefill) == ["a", "b"]
    assert [c.seq.slot for c in batch.prefill] == [0, 1]
    assert [s.request_id for s in scheduler.waiting] == ["c"]
    scheduler.postprocess(batch, [5, 5])
    batch = scheduler.schedule()
    assert ids(batch.prefill) == ["c"]
    assert batch.prefill[0].seq.slot == 0


def chunks(batch: ScheduledBatch) -> list[tuple[str, int, int]]:
    return [(c.seq.request_id, c.start, c.length) for c in batch.prefill]


def test_a_long_prompt_is_prefilled_in_chunks_while_running_sequences_decode() -> None:
    scheduler = Scheduler(max_batch_size=8, max_prefill_tokens=10)
    scheduler.add(seq("short", prompt_len=4, max_tokens=10))
    scheduler.postprocess(scheduler.schedule(), [5])
    for name, length in [("long", 25), ("a", 6)]:
        scheduler.add(seq(name, prompt_len=length))
    steps = []
    for _ in range(4):
        batch = scheduler.schedule()
        steps.append((ids(batch.decode), chunks(batch), ids(batch.sequences)))
        scheduler.postprocess(batch, [5] * len(batch.sequences))
    assert steps == [
        (["short"], [("long", 0, 10)], ["short"]),
        (["short"], [("long", 10, 10)], ["short"]),
        (["short"], [("long", 20, 5), ("a", 0, 5)], ["short", "long"]),
        (["short", "long"], [("a", 5, 1)], ["short", "long", "a"]),
    ]


def test_a_sequence_reports_how_long_it_waited_on_its_first_output() -> None:
    scheduler = Scheduler(max_batch_size=1)
    scheduler.add(seq("a", max_tokens=3))
    [first] = scheduler.postprocess(scheduler.schedule(), [5])
    [second] = scheduler.postprocess(scheduler.schedule(), [5])
    assert first.queue_seconds is not None and 0.0 <= first.queue_seconds < 5.0
    assert second.queue_seconds is None


def test_abort_frees_a_running_slot_and_drops_a_waiting_request() -> None:
    scheduler = Scheduler(max_batch_size=1)
    running, waiting = seq("running"), seq("waiting")
    scheduler.add(running)
    scheduler.add(waiting)
    scheduler.schedule()
    assert scheduler.abort("waiting") is waiting
    assert scheduler.abort("running") is running
    assert scheduler.abort("unknown") is None
    assert not scheduler.has_unfinished()
    scheduler.add(seq("next"))
    assert scheduler.schedule().prefill[0].seq.slot == 0


def test_postprocess_refuses_mismatched_lengths() -> None:
    scheduler = Scheduler(max_batch_size=1)
    scheduler.add(seq("a"))
    batch = scheduler.schedule()
    with pytest.raises(ValueError, match="sampled tokens"):
        scheduler.postprocess(batch, [])
