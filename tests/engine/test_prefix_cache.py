from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from collections.abc import Sequence as TokenIds
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from llmapi.backends.local.builtin import build_builtin_model
from llmapi.engine.llm_engine import LLMEngine
from llmapi.engine.prefix_cache import PrefixCache, PrefixMatch
from llmapi.engine.request_output import RequestOutput
from llmapi.engine.sampling_params import SamplingParams
from llmapi.engine.scheduled_batch import PrefixCopy, ScheduledBatch
from llmapi.engine.scheduler import Scheduler
from llmapi.engine.sequence import Sequence

GREEDY = SamplingParams(max_tokens=12, temperature=0.0, ignore_eos=True)
SYSTEM = list(range(100, 140))  # a 40-token shared prefix
BLOCK = 16


class CharDecoder:
    def decode(self, token_ids: TokenIds[int], *, skip_special_tokens: bool = False) -> str:
        return "".join(chr(97 + t % 26) for t in token_ids)


def seq(request_id: str, prompt: list[int], max_tokens: int = 3) -> Sequence:
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True)
    return Sequence(request_id, prompt, params, decoder=CharDecoder(), eos_token_id=None)


def run(scheduler: Scheduler, batch: ScheduledBatch) -> None:
    scheduler.postprocess(batch, [7] * len(batch.sequences))


# The index.


def test_the_longest_cached_prefix_is_found_and_extends_past_its_last_whole_block() -> None:
    cache = PrefixCache(block_size=4)
    cache.store(0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    cache.store(1, [1, 2, 3, 4, 9, 9, 9, 9])
    assert cache.find([1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12]) == [PrefixMatch(0, 9)]
    assert cache.find([1, 2, 3, 4, 9, 9, 9, 9, 9]) == [PrefixMatch(1, 8)]
    assert sorted(cache.find([1, 2, 3, 4, 0]), key=lambda m: m.slot) == [PrefixMatch(0, 4), PrefixMatch(1, 4)]
    assert cache.find([1, 2, 3, 0]) == []  # shorter than a block: not worth a copy
    assert cache.find([2, 2, 3, 4, 5, 6, 7, 8]) == []


def test_a_forgotten_or_overwritten_slot_is_never_a_source() -> None:
    cache = PrefixCache(block_size=4)
    cache.store(0, list(range(12)))
    cache.forget(0)
    assert cache.find(list(range(12))) == []
    cache.store(1, list(range(12)))
    cache.store(1, [*range(4), 0, 0, 0, 0])  # the slot now holds another continuation
    assert cache.find(list(range(12))) == [PrefixMatch(1, 4)]
    cache.renumber({1: 5})
    assert cache.find(list(range(12))) == [PrefixMatch(5, 4)]
    assert cache.slots == [5]


# The scheduler.


def test_a_prompt_sharing_a_finished_prompts_prefix_takes_its_slot_and_starts_after_it() -> None:
    scheduler = Scheduler(max_batch_size=4, prefix_cache=PrefixCache(BLOCK))
    first = seq("first", [*SYSTEM, 1, 2, 3], max_tokens=1)
    scheduler.add(first)
    run(scheduler, scheduler.schedule())
    assert first.is_finished
    second = seq("second", [*SYSTEM, 4, 5])
    scheduler.add(second)
    batch = scheduler.schedule()
    assert (second.slot, batch.prefix_copies) == (0, ())
    assert [(c.start, c.length) for c in batch.prefill] == [(len(SYSTEM), 2)]
    assert scheduler.num_cached_prompt_tokens == len(SYSTEM)


def test_a_running_prompt_is_copied_into_the_new_sequences_own_slot() -> None:
    scheduler = Scheduler(max_batch_size=4, prefix_cache=PrefixCache(BLOCK))
    scheduler.add(seq("first", [*SYSTEM, 1], max_tokens=50))
    run(scheduler, scheduler.schedule())
    scheduler.add(seq("second", [*SYSTEM, 2, 3]))
    batch = scheduler.schedule()
    assert batch.prefix_copies == (PrefixCopy(source=0, target=1, length=len(SYSTEM)),)
    assert [(c.seq.request_id, c.start, c.length) for c in batch.prefill] == [("second", len(SYSTEM), 2)]


def test_equal_prompts_wait_for_the_first_to_be_prefilled_then_copy_all_but_the_last_token() -> None:
    scheduler = Scheduler(max_batch_size=4, max_prefill_tokens=32, prefix_cache=PrefixCache(BLOCK))
    choices = [seq(f"choice-{i}", [*SYSTEM, 1, 2]) for i in range(3)]
    for choice in choices:
        scheduler.add(choice)
    prefilled = []
    while not choices[0].is_prefilled:
        batch = scheduler.schedule()
        prefilled.append([c.seq.request_id for c in batch.prefill])
        run(scheduler, batch)
    assert prefilled == [["choice-0"], ["choice-0"]]  # 42 tokens in chunks of 32; the others wait
    batch = scheduler.schedule()
    assert [(c.seq.request_id, c.start, c.length) for c in batch.prefill] == [
        ("choice-1", 41, 1),
        ("choice-2", 41, 1),
    ]
    assert batch.prefix_copies == (PrefixCopy(0, 1, 41), PrefixCopy(0, 2, 41))


def test_a_prompt_sharing_nothing_is_not_held_back_by_a_long_prefill() -> None:
    scheduler = Scheduler(max_batch_size=4, max_prefill_tokens=64, prefix_cache=PrefixCache(BLOCK))
    scheduler.add(seq("long", [*SYSTEM, *SYSTEM]))
    scheduler.add(seq("other", list(range(20))))
    scheduler.add(seq("choice", [*SYSTEM, *SYSTEM]))
    first = scheduler.schedule()
    assert [c.seq.request_id for c in first.prefill] == ["long"]
    run(scheduler, first)
    second = scheduler.schedule()
    assert [c.seq.request_id for c in second.prefill] == ["long", "other"]
    assert [s.request_id for s in scheduler.waiting] == ["choice"]


def test_slots_are_taken_lowest_first_and_an_evicted_slot_is_never_used_as_a_source() -> None:
    scheduler = Scheduler(max_batch_size=3, prefix_cache=PrefixCache(BLOCK))
    prompts = {name: [base + i for i in range(20)] for name, base in (("a", 0), ("b", 100), ("c", 200))}
    for name in ("a", "b"):  # b takes slot 0, a's: the batch stays one row
        scheduler.add(seq(name, prompts[name], max_tokens=1))
        batch = scheduler.schedule()
        assert batch.prefill[0].seq.slot == 0
        run(scheduler, batch)
    scheduler.add(seq("b-again", prompts["b"]))
    batch = scheduler.schedule()
    assert [(c.seq.slot, c.start) for c in batch.prefill] == [(0, 19)]  # b's prefix, in place
    run(scheduler, batch)
    scheduler.abort("b-again")  # its slot keeps b's prompt
    scheduler.add(seq("c", prompts["c"]))
    scheduler.add(seq("b3", prompts["b"]))
    batch = scheduler.schedule()  # c evicts b from slot 0: b3 finds nothing and starts from scratch
    assert [(chunk.seq.slot, chunk.start) for chunk in batch.prefill] == [(0, 0), (1, 0)]
    assert batch.prefix_copies == ()


def test_an_aborted_sequence_leaves_what_it_prefilled_and_a_failed_step_leaves_nothing() -> None:
    scheduler = Scheduler(max_batch_size=2, max_prefill_tokens=32, prefix_cache=PrefixCache(BLOCK))
    scheduler.add(seq("aborted", [*SYSTEM, 1]))
    run(scheduler, scheduler.schedule())  # 32 of 41 tokens prefilled
    scheduler.abort("aborted")
    assert scheduler.prefix_cache is not None
    assert scheduler.prefix_cache.find([*SYSTEM, 2]) == [PrefixMatch(0, 32)]
    failed = seq("failed", [*SYSTEM, 3], max_tokens=5)
    scheduler.add(failed)
    run(scheduler, scheduler.schedule())
    assert failed.slot == 0 and failed.is_prefilled
    scheduler.abort_running()
    assert scheduler.prefix_cache.find([*SYSTEM, 2]) == []
    scheduler.add(seq("next", [*SYSTEM, 4]))
    batch = scheduler.schedule()
    assert (batch.prefill[0].start, batch.prefix_copies) == (0, ())


def test_cached_prefixes_are_kept_most_recent_first_within_the_idle_budget() -> None:
    scheduler = Scheduler(max_batch_size=4, prefix_cache=PrefixCache(BLOCK))
    for i in range(3):
        scheduler.add(seq(str(i), [1000 * i + t for t in range(20)], max_tokens=1))
    run(scheduler, scheduler.schedule())
    assert scheduler.num_cached_prefixes == 3
    kept, longest = scheduler.keep_cached_prefixes(max_positions=45)
    assert (kept, longest) == ([1, 2], 20)
    assert scheduler.prefix_cache is not None
    assert scheduler.prefix_cache.find([2000 + t for t in range(20)]) == [PrefixMatch(1, 20)]
    assert scheduler.prefix_cache.find(list(range(20))) == []


# The engine: prefix caching is invisible in the outputs, and prefills fewer tokens.


class PrefillCounter:
    def __init__(self) -> None:
        self.prefill_tokens = 0

    def on_step(self, *, batch_size: int, decode_tokens: int, prefill_tokens: int, seconds: float) -> None:
        self.prefill_tokens += prefill_tokens


def engine_for(model: Any, vocab_size: int, **kwargs: Any) -> tuple[LLMEngine, PrefillCounter]:
    counter = PrefillCounter()
    engine = LLMEngine(
        model, CharDecoder(), vocab_size=vocab_size, eos_token_id=None, observer=counter, **kwargs
    )
    return engine, counter


def run_to_end(engine: LLMEngine) -> dict[str, list[int]]:
    collected: dict[str, list[RequestOutput]] = defaultdict(list)
    while engine.has_unfinished():
        for output in engine.step():
            collected[output.request_id].append(output)
    return {name: [t for o in outputs for t in o.token_ids] for name, outputs in collected.items()}


Workload = Callable[[LLMEngine], dict[str, list[int]]]


def shared_system_prompt(engine: LLMEngine) -> dict[str, list[int]]:
    """Requests one after another, then several at once, then a prompt equal to a cached one."""
    out: dict[str, list[int]] = {}
    for i in range(2):
        engine.add_request(f"seq-{i}", [*SYSTEM, 7 + i, 8 + i, 9], GREEDY)
        out |= run_to_end(engine)
    for i in range(3):
        engine.add_request(f"batch-{i}", [*SYSTEM, 20 + i], GREEDY)
    out |= run_to_end(engine)
    engine.add_request("equal", [*SYSTEM, 7, 8, 9], GREEDY)
    out |= run_to_end(engine)
    engine.add_request("history", [*SYSTEM, 7, 8, 9, *out["seq-0"], 30, 31], GREEDY)
    return out | run_to_end(engine)


def n_choices(engine: LLMEngine) -> dict[str, list[int]]:
    for i in range(4):  # the KV cache grows to 4 slots: the copies below write into allocated rows
        engine.add_request(f"warm-up-{i}", [300 + i] * 20, GREEDY)
    out = run_to_end(engine)
    engine.add_request(
        "running", [*SYSTEM, 50], SamplingParams(max_tokens=30, temperature=0.0, ignore_eos=True)
    )
    engine.step()
    for i in range(3):
        engine.add_request(f"choice-{i}", [*SYSTEM, 60, 61], GREEDY)
    return out | run_to_end(engine)


def tiny_llama(vocab_size: int) -> Any:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        initializer_range=0.3,
    )
    return AutoModelForCausalLM.from_config(config).eval()


@pytest.mark.parametrize("max_prefill_tokens", [512, 16])
@pytest.mark.parametrize("workload", [shared_system_prompt, n_choices])
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_outputs_are_the_same_with_and_without_prefix_caching_and_fewer_tokens_are_prefilled(
    family: str, workload: Workload, max_prefill_tokens: int, model: Any, tokenizer: Any
) -> None:
    vocab_size = len(tokenizer)
    chosen = model if family == "gpt2" else tiny_llama(vocab_size)
    results = {}
    for caching in (False, True):
        engine, counter = engine_for(
            chosen,
            vocab_size,
            max_batch_size=4,
            max_prefill_tokens=max_prefill_tokens,
            prefix_caching=caching,
        )
        results[caching] = workload(engine), counter.prefill_tokens
    (plain, plain_prefilled), (cached, cached_prefilled) = results[False], results[True]
    assert cached == plain
    assert len({tuple(tokens) for tokens in plain.values()}) > 1  # the requests do differ
    assert cached_prefilled <= plain_prefilled - 2 * len(SYSTEM)


def test_the_builtin_gpt2_gives_the_same_text_with_prefix_caching() -> None:
    model, tokenizer = build_builtin_model("gpt2-124m-random", torch.float32)
    results = []
    for caching in (False, True):
        engine, counter = engine_for(model, len(tokenizer), max_batch_size=4, prefix_caching=caching)
        results.append((shared_system_prompt(engine), counter.prefill_tokens))
    assert results[1][0] == results[0][0]
    assert results[1][1] < results[0][1] // 3


def test_a_prompt_equal_to_a_cached_one_prefills_only_its_last_token(model: Any, tokenizer: Any) -> None:
    engine, counter = engine_for(model, len(tokenizer), max_batch_size=2)
    engine.add_request("first", [*SYSTEM, 1], GREEDY)
    first = run_to_end(engine)["first"]
    before = counter.prefill_tokens
    engine.add_request("again", [*SYSTEM, 1], GREEDY)
    assert run_to_end(engine)["again"] == first
    assert counter.prefill_tokens - before == 1


def test_the_idle_cache_keeps_recent_prefixes_within_its_budget_or_frees_everything(
    model: Any, tokenizer: Any
) -> None:
    plain, _ = engine_for(model, len(tokenizer), max_batch_size=4, prefix_caching=False)
    plain.add_request("r", [*SYSTEM, 1], GREEDY)
    expected = run_to_end(plain)["r"]
    assert plain.model_runner.cache.capacity == (0, 0)

    engine, counter = engine_for(model, len(tokenizer), max_batch_size=4, idle_cache_bytes=1)
    engine.add_request("r", [*SYSTEM, 1], GREEDY)
    run_to_end(engine)
    assert engine.model_runner.cache.capacity == (0, 0)  # nothing fits one byte
    assert engine.scheduler.num_cached_prefixes == 0

    cache = engine.model_runner.cache
    engine.idle_cache_bytes = 2 * 64 * cache.bytes_per_position  # two prefixes of 64 positions
    for i in range(4):  # at once: 4 slots of 64 positions and more
        engine.add_request(f"r{i}", [*SYSTEM, 2 + i], SamplingParams(max_tokens=10 + i, ignore_eos=True))
    run_to_end(engine)
    slots, length = cache.capacity
    assert slots * length * cache.bytes_per_position <= engine.idle_cache_bytes
    assert engine.scheduler.num_cached_prefixes == 2
    before = counter.prefill_tokens
    engine.add_request("r", [*SYSTEM, 1], GREEDY)
    assert run_to_end(engine)["r"] == expected
    assert counter.prefill_tokens - before == 1  # the prefix survived the move to slots 0 and 1
