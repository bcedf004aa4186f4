from __future__ import annotations

from collections.abc import Sequence as TokenIds

import pytest

from llmapi.engine.sampling_params import SamplingParams
from llmapi.engine.scheduler import Scheduler
from llmapi.engine.sequence import Sequence, SequenceStatus


class CharDecoder:
    def decode(self, token_ids: TokenIds[int], *, skip_special_tokens: bool = False) -> str:
        return "".join(chr(97 + t % 26) for t in token_ids)


def seq(request_id: str, prompt_len: int = 3, max_tokens: int = 4) -> Sequence:
    params = SamplingParams(max_tokens=max_tokens)
    return Sequence(request_id, [1] * prompt_len, params, decoder=CharDecoder(), eos_token_id=None)


def ids(seqs: TokenIds[Sequence]) -> list[str]:
    return [s.request_id for s in seqs]


def test_requests_join_between_steps_and_leave_when_finished() -> None:
    scheduler = Scheduler(max_batch_size=4)
    a, b = seq("a", max_tokens=2), seq("b", max_tokens=3)
    scheduler.add(a)
    first = scheduler.schedule()
    assert (ids(first.decode), ids(first.prefill)) == ([], ["a"])
    scheduler.postprocess(first.sequences, [5])
    scheduler.add(b)
    second = scheduler.schedule()
    assert (ids(second.decode), ids(second.prefill)) == (["a"], ["b"])
    scheduler.postprocess(second.sequences, [5, 5])  # a reaches max_tokens=2 and leaves
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
    assert [s.slot for s in batch.prefill] == [0, 1]
    assert scheduler.num_waiting == 1
    scheduler.postprocess(batch.sequences, [5, 5])
    batch = scheduler.schedule()
    assert ids(batch.prefill) == ["c"]
    assert batch.prefill[0].slot == 0


def test_prefill_tokens_per_step_are_bounded_but_a_long_prompt_still_runs() -> None:
    scheduler = Scheduler(max_batch_size=8, max_prefill_tokens=10)
    for name, length in [("long", 30), ("a", 6), ("b", 6)]:
        scheduler.add(seq(name, prompt_len=length))
    assert ids(scheduler.schedule().prefill) == ["long"]
    assert ids(scheduler.schedule().prefill) == ["a"]
    assert ids(scheduler.schedule().prefill) == ["b"]


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
    assert scheduler.schedule().prefill[0].slot == 0


def test_postprocess_refuses_mismatched_lengths() -> None:
    scheduler = Scheduler(max_batch_size=1)
    scheduler.add(seq("a"))
    batch = scheduler.schedule()
    with pytest.raises(ValueError, match="sampled tokens"):
        scheduler.postprocess(batch.sequences, [])
