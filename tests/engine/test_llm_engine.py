from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
import torch

from llmapi.backends.local.builtin import build_builtin_model
from llmapi.engine.errors import PromptTooLongError
from llmapi.engine.llm_engine import LLMEngine
from llmapi.engine.request_output import RequestOutput
from llmapi.engine.sampling_params import SamplingParams

GREEDY = SamplingParams(max_tokens=24, temperature=0.0, ignore_eos=True)

EngineFactory = Callable[..., LLMEngine]
Reference = Callable[[Any, list[int], int], list[int]]


def run_to_end(
    engine: LLMEngine, collected: dict[str, list[RequestOutput]] | None = None
) -> dict[str, list[RequestOutput]]:
    collected = collected if collected is not None else defaultdict(list)
    while engine.has_unfinished():
        for output in engine.step():
            collected[output.request_id].append(output)
    return collected


def tokens(outputs: list[RequestOutput]) -> list[int]:
    return [t for o in outputs for t in o.token_ids]


def test_batched_greedy_matches_hf_generate_while_requests_join_and_leave(
    make_engine: EngineFactory, model: Any, tokenizer: Any, hf_greedy: Reference
) -> None:
    prompts = {
        "first": tokenizer.encode("def fill(text, width=70):"),
        "second": tokenizer.encode("import re"),
        "third": tokenizer.encode("    return '\\n'.join(lines) if lines else text"),
    }
    expected = {name: hf_greedy(model, prompt, GREEDY.max_tokens) for name, prompt in prompts.items()}
    engine = make_engine()
    collected: dict[str, list[RequestOutput]] = defaultdict(list)
    batch_sizes = []

    def step() -> None:
        outputs = engine.step()
        batch_sizes.append(len(outputs))
        for output in outputs:
            collected[output.request_id].append(output)

    engine.add_request("first", prompts["first"], GREEDY)
    step()
    step()
    engine.add_request("second", prompts["second"], GREEDY)
    engine.add_request("sampled-1", prompts["second"], SamplingParams(max_tokens=6, ignore_eos=True))
    for _ in range(4):
        step()
    engine.add_request("third", prompts["third"], GREEDY)
    sampled = SamplingParams(max_tokens=40, top_p=0.9, top_k=20, ignore_eos=True)
    engine.add_request("sampled-2", prompts["first"], sampled)
    while engine.has_unfinished():
        step()

    assert {name: tokens(collected[name]) for name in prompts} == expected
    # Joined at steps 3 and 7; sampled-1 leaves after its 6th token (step 8), "first" after its 24th.
    assert batch_sizes[:9] == [1, 1, 3, 3, 3, 3, 5, 5, 4]
    assert batch_sizes[23:25] == [4, 3]
    assert engine.scheduler.running == []


def test_greedy_is_the_same_alone_and_inside_a_batch_of_sampled_requests(
    make_engine: EngineFactory, tokenizer: Any
) -> None:
    prompt = tokenizer.encode("class TextWrapper:")
    alone = make_engine()
    alone.add_request("greedy", prompt, GREEDY)
    crowded = make_engine()
    for i in range(5):
        crowded.add_request(
            f"noise-{i}", tokenizer.encode(f"x = {i}" * (i + 1)), SamplingParams(max_tokens=30)
        )
    crowded.add_request("greedy", prompt, GREEDY)
    assert tokens(run_to_end(alone)["greedy"]) == tokens(run_to_end(crowded)["greedy"])


def test_a_seed_reproduces_a_sample_whatever_else_runs(make_engine: EngineFactory, tokenizer: Any) -> None:
    prompt = tokenizer.encode("def shorten(text, width):")
    seeded = SamplingParams(max_tokens=20, seed=7, ignore_eos=True)
    alone = make_engine()
    alone.add_request("seeded", prompt, seeded)
    crowded = make_engine()
    crowded.add_request("other", prompt, SamplingParams(max_tokens=30, ignore_eos=True))
    crowded.step()
    crowded.add_request("seeded", prompt, seeded)
    first = tokens(run_to_end(alone)["seeded"])
    assert tokens(run_to_end(crowded)["seeded"]) == first
    other_seed = make_engine()
    other_seed.add_request("seeded", prompt, SamplingParams(max_tokens=20, seed=8, ignore_eos=True))
    assert tokens(run_to_end(other_seed)["seeded"]) != first


def test_max_tokens_ends_with_length_and_counts_tokens(make_engine: EngineFactory, tokenizer: Any) -> None:
    engine = make_engine()
    prompt = tokenizer.encode("import textwrap")
    engine.add_request("r", prompt, SamplingParams(max_tokens=5, ignore_eos=True))
    outputs = run_to_end(engine)["r"]
    assert [o.finish_reason for o in outputs] == [None] * 4 + ["length"]
    assert (outputs[-1].prompt_tokens, outputs[-1].completion_tokens) == (len(prompt), 5)


def test_a_stop_string_spanning_two_tokens_cuts_the_text(make_engine: EngineFactory, tokenizer: Any) -> None:
    prompt = tokenizer.encode("def dedent(text):")
    engine = make_engine()
    engine.add_request("free", prompt, GREEDY)
    free = run_to_end(engine)["free"]
    text = "".join(o.text for o in free)
    pieces = [tokenizer.decode([t]) for t in tokens(free)]
    # Choose a token boundary late enough that some text streams first: stop = last char + next first char.
    boundary = next(
        k
        for k in range(3, len(pieces) - 1)
        if pieces[k]
        and pieces[k + 1]
        and text.find(pieces[k][-1] + pieces[k + 1][0]) == len("".join(pieces[: k + 1])) - 1
    )
    stop = pieces[boundary][-1] + pieces[boundary + 1][0]
    engine.add_request("stopped", prompt, SamplingParams(max_tokens=24, temperature=0.0, stop=(stop,)))
    stopped = run_to_end(engine)["stopped"]
    assert "".join(o.text for o in stopped) == text[: text.find(stop)]
    assert stopped[-1].finish_reason == "stop"
    assert len(stopped) == boundary + 2
    assert any(o.text for o in stopped[:-1])  # the text before the stop string was streamed as it came


def test_abort_frees_the_slot_for_the_next_request(make_engine: EngineFactory, tokenizer: Any) -> None:
    engine = make_engine(max_batch_size=1)
    engine.add_request("long", tokenizer.encode("a"), SamplingParams(max_tokens=100, ignore_eos=True))
    engine.add_request("next", tokenizer.encode("b"), SamplingParams(max_tokens=2, ignore_eos=True))
    assert [o.request_id for o in engine.step()] == ["long"]
    assert engine.abort_request("long")
    assert not engine.abort_request("long")
    assert [o.request_id for o in engine.step()] == ["next"]
    assert engine.scheduler.running[0].slot == 0


def test_a_generation_ends_with_length_where_the_context_ends(make_engine: EngineFactory) -> None:
    engine = make_engine()
    assert engine.max_model_len == 256
    engine.add_request("r", [1] * 250, SamplingParams(max_tokens=10, ignore_eos=True))
    outputs = run_to_end(engine)["r"]
    assert (outputs[-1].finish_reason, outputs[-1].completion_tokens) == ("length", 6)


def test_a_prompt_that_fills_the_context_is_refused(make_engine: EngineFactory) -> None:
    engine = make_engine()
    with pytest.raises(PromptTooLongError) as refused:
        engine.add_request("r", [1] * 256, SamplingParams(max_tokens=1))
    assert (refused.value.prompt_tokens, refused.value.max_model_len) == (256, 256)
    assert not engine.has_unfinished()


def test_prompts_prefilled_in_chunks_match_hf_generate(
    make_engine: EngineFactory, model: Any, tokenizer: Any, hf_greedy: Reference
) -> None:
    prompts = {
        "decoding": tokenizer.encode("import re"),
        "long": tokenizer.encode(
            "    lines = text.splitlines()\n    return '\\n'.join(prefix + line for line in lines)"
        ),
        "medium": tokenizer.encode("def indent(text, prefix, predicate=None):"),
    }
    expected = {name: hf_greedy(model, prompt, GREEDY.max_tokens) for name, prompt in prompts.items()}
    engine = make_engine(max_prefill_tokens=7)
    engine.add_request("decoding", prompts["decoding"], GREEDY)
    collected = defaultdict(list)
    for output in engine.step():
        collected[output.request_id].append(output)
    engine.add_request("long", prompts["long"], GREEDY)
    engine.add_request("medium", prompts["medium"], GREEDY)
    run_to_end(engine, collected)
    assert len(prompts["long"]) > 3 * 7
    assert {name: tokens(outputs) for name, outputs in collected.items()} == expected


def test_the_observer_hears_every_step(make_engine: EngineFactory, tokenizer: Any) -> None:
    steps: list[tuple[int, int, int, float]] = []

    class Recorder:
        def on_step(
            self, *, batch_size: int, decode_tokens: int, prefill_tokens: int, seconds: float
        ) -> None:
            steps.append((batch_size, decode_tokens, prefill_tokens, seconds))

    engine = make_engine(max_prefill_tokens=4, observer=Recorder())
    engine.add_request("r", [1, 2, 3, 4, 5, 6], SamplingParams(max_tokens=3, ignore_eos=True))
    outputs = run_to_end(engine)["r"]
    assert [s[:3] for s in steps] == [(1, 0, 4), (1, 0, 2), (1, 1, 0), (1, 1, 0)]
    assert all(s[3] > 0.0 for s in steps)
    assert outputs[0].queue_seconds is not None and outputs[0].queue_seconds >= 0.0
    assert [o.queue_seconds for o in outputs[1:]] == [None, None]


def test_logprobs_are_the_log_softmax_of_the_builtin_gpt2s_own_logits() -> None:
    model, tokenizer = build_builtin_model("gpt2-124m-random", torch.float32)
    reference = copy.deepcopy(model).eval()
    engine = LLMEngine(
        model, tokenizer, vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id, max_batch_size=4
    )
    prompt = tokenizer.encode("def wrap(text, width=70):")
    engine.add_request(
        "asking", prompt, SamplingParams(max_tokens=6, temperature=0.0, logprobs=5, ignore_eos=True)
    )
    engine.add_request("free", prompt, SamplingParams(max_tokens=6, ignore_eos=True))
    outputs = run_to_end(engine)["asking"]
    generated = tokens(outputs)
    reported = [lp for o in outputs for lp in o.logprobs]
    assert [lp.token_id for lp in reported] == generated
    with torch.inference_mode():
        logits = reference(torch.tensor([prompt + generated])).logits[
            0, len(prompt) - 1 : -1, : len(tokenizer)
        ]
    expected = torch.log_softmax(logits.float(), dim=-1)
    for position, lp in enumerate(reported):
        assert lp.logprob == pytest.approx(float(expected[position, lp.token_id]), abs=1e-3)
        top_values, top_ids = expected[position].topk(5)
        assert [t.token_id for t in lp.top] == top_ids.tolist()
        assert [t.logprob for t in lp.top] == pytest.approx(top_values.tolist(), abs=1e-3)
        assert lp.top[0].token_id == lp.token_id  # greedy: the likeliest token
        assert lp.token == tokenizer.decode([lp.token_id])


def test_a_stop_token_id_ends_the_sequence_before_its_text(
    make_engine: EngineFactory, tokenizer: Any
) -> None:
    prompt = tokenizer.encode("def indent(text, prefix):")
    engine = make_engine()
    engine.add_request("free", prompt, GREEDY)
    free = tokens(run_to_end(engine)["free"])
    stop_at = next(i for i in range(2, len(free)) if free[i] not in free[:i])
    params = SamplingParams(max_tokens=24, temperature=0.0, ignore_eos=True, stop_token_ids=(free[stop_at],))
    engine.add_request("stopped", prompt, params)
    stopped = run_to_end(engine)["stopped"]
    assert tokens(stopped) == free[: stop_at + 1]
    assert stopped[-1].finish_reason == "stop"
    assert "".join(o.text for o in stopped) == tokenizer.decode(free[:stop_at])


def test_token_ids_past_the_vocabulary_are_refused(make_engine: EngineFactory, tokenizer: Any) -> None:
    engine = make_engine()
    with pytest.raises(ValueError, match="below"):
        engine.add_request("r", [1], SamplingParams(logit_bias=((len(tokenizer), 1.0),)))
    with pytest.raises(ValueError, match="below"):
        engine.add_request("r", [1], SamplingParams(stop_token_ids=(len(tokenizer),)))


def test_a_seed_reproduces_text_and_logprobs_with_bias_while_others_share_the_batch(
    make_engine: EngineFactory, tokenizer: Any
) -> None:
    prompt = tokenizer.encode("def fill(text):")
    space = tokenizer.encode(" ")[0]
    seeded = SamplingParams(max_tokens=16, seed=11, ignore_eos=True, logprobs=3, logit_bias=((space, 6.0),))

    def run(crowd: int) -> list[tuple[int, float, tuple[int, ...]]]:
        engine = make_engine()
        for i in range(crowd):
            params = SamplingParams(max_tokens=20, ignore_eos=True, logprobs=i % 3 or None, temperature=1.3)
            engine.add_request(f"other-{i}", tokenizer.encode("import os" * (i + 1)), params)
        if crowd:
            engine.step()
        engine.add_request("seeded", prompt, seeded)
        outputs = run_to_end(engine)["seeded"]
        return [
            (lp.token_id, lp.logprob, tuple(t.token_id for t in lp.top)) for o in outputs for lp in o.logprobs
        ]

    alone = run(0)
    assert len(alone) == 16
    crowded = run(5)
    assert [(t, top) for t, _, top in crowded] == [(t, top) for t, _, top in alone]
    # The same up to float rounding: a batched forward pass adds in another order.
    assert [lp for _, lp, _ in crowded] == pytest.approx([lp for _, lp, _ in alone], abs=1e-3)
    unbiased = make_engine()
    unbiased.add_request("seeded", prompt, SamplingParams(max_tokens=16, seed=11, ignore_eos=True))
    assert tokens(run_to_end(unbiased)["seeded"]) != [t for t, _, _ in alone]
