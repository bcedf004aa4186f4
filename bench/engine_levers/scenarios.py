"""Engine-level load scenarios (no HTTP) on a built-in model (SmolLM2-135M-Instruct or the GPT-2-small shape):
aggregate tok/s, TTFT, stalls."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

from llmapi.backends.local.loader import load_causal_lm
from llmapi.engine.async_engine import AsyncEngine
from llmapi.engine.llm_engine import LLMEngine
from llmapi.engine.sampling_params import SamplingParams
from llmapi.types import ModelCode, Quantization

MODELS = {"gpt2": "builtin:gpt2-124m-random", "smollm2": "builtin:smollm2-135m-instruct"}
NEW_TOKENS = 128


@dataclass(frozen=True)
class Lever:
    name: str
    dtype: torch.dtype
    quantization: Quantization = "none"
    compile_model: bool = False
    threads: int = 2
    max_prefill_tokens: int = 512
    model_code: ModelCode = "auto"
    model: str = "gpt2"  # a key of MODELS


@dataclass(frozen=True)
class LoadResult:
    tokens_per_second: float
    ttft_p50_ms: float


def prompts(vocab: int, count: int = 16) -> list[list[int]]:
    """16 prompts of 24-32 tokens, the same on every run."""
    generator = torch.Generator().manual_seed(1)
    return [torch.randint(1, vocab, (24 + i % 9,), generator=generator).tolist() for i in range(count)]


def build_engine(lever: Lever) -> tuple[LLMEngine, int]:
    torch.set_num_threads(lever.threads)
    model, tokenizer = load_causal_lm(MODELS[lever.model], lever.dtype)
    decoder: Any = tokenizer
    engine = LLMEngine(
        model,
        decoder,
        vocab_size=len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        max_batch_size=64,
        max_prefill_tokens=lever.max_prefill_tokens,
        quantization=lever.quantization,
        compile_model=lever.compile_model,
        model_code=lever.model_code,
        seed=0,
    )
    return engine, len(tokenizer)


async def _one(engine: AsyncEngine, prompt: list[int], params: SamplingParams, rid: str) -> tuple[float, int]:
    start = time.perf_counter()
    first: float | None = None
    count = 0
    async for out in engine.generate(prompt, params, rid):
        if first is None:
            first = time.perf_counter() - start
        count += len(out.token_ids)
    return first or 0.0, count


async def concurrent_load(engine: LLMEngine, vocab: int, concurrency: int, runs: int) -> LoadResult:
    """`concurrency` requests at once (the 16 prompts, repeated), NEW_TOKENS each; median of `runs`."""
    params = SamplingParams(max_tokens=NEW_TOKENS, ignore_eos=True)
    texts = prompts(vocab)
    results = []
    for run in range(runs):
        async_engine = AsyncEngine(engine, max_waiting=256)
        async_engine.start()
        try:
            start = time.perf_counter()
            outcomes = await asyncio.gather(
                *(_one(async_engine, texts[i % 16], params, f"{run}-{i}") for i in range(concurrency))
            )
            wall = time.perf_counter() - start
        finally:
            await async_engine.close()
        tokens = sum(count for _, count in outcomes)
        results.append(LoadResult(tokens / wall, statistics.median(t for t, _ in outcomes) * 1000))
    return LoadResult(
        statistics.median(r.tokens_per_second for r in results),
        statistics.median(r.ttft_p50_ms for r in results),
    )


def warm_up(engine: LLMEngine, vocab: int) -> None:
    asyncio.run(concurrent_load(engine, vocab, 4, 1))


@dataclass(frozen=True)
class StallResult:
    longest_gap_ms: float  # the longest pause between two tokens of a running stream
    long_prompt_ttft_ms: float


def long_prompt_stall(engine: LLMEngine, vocab: int, long_prompt_tokens: int = 896) -> StallResult:
    """16 streams decoding when a long prompt arrives: how long do they stall, when does it start."""
    params = SamplingParams(max_tokens=48, ignore_eos=True)
    for i, prompt in enumerate(prompts(vocab)):
        engine.add_request(f"s{i}", prompt, params)
    long_prompt = torch.randint(1, vocab, (long_prompt_tokens,), generator=torch.Generator().manual_seed(2))
    last_seen: dict[str, float] = {}
    longest = 0.0
    long_start = long_first = 0.0
    step = 0
    while engine.has_unfinished():
        if step == 8:
            engine.add_request("long", long_prompt.tolist(), SamplingParams(max_tokens=4, ignore_eos=True))
            long_start = time.perf_counter()
        outputs = engine.step()
        now = time.perf_counter()
        step += 1
        for out in outputs:
            if out.request_id == "long":
                long_first = long_first or now
            elif out.request_id in last_seen:
                longest = max(longest, now - last_seen[out.request_id])
            last_seen[out.request_id] = now
    return StallResult(longest * 1000, (long_first - long_start) * 1000)


def hf_static_batch(
    model_name: str, dtype: torch.dtype, vocab_prompts: list[list[int]], batch: int, runs: int
) -> float:
    """Transformers' generate on the same requests as one left-padded static batch (sdpa), tok/s."""
    model, _ = load_causal_lm(MODELS[model_name], dtype)
    model.set_attn_implementation("sdpa")
    rows = [vocab_prompts[i % 16] for i in range(batch)]
    width = max(len(p) for p in rows)
    ids = torch.tensor([[0] * (width - len(p)) + p for p in rows])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in rows])
    kwargs = {
        "max_new_tokens": NEW_TOKENS,
        "min_new_tokens": NEW_TOKENS,
        "do_sample": True,
        "pad_token_id": 0,
    }
    speeds = []
    with torch.inference_mode():
        for _ in range(runs):
            start = time.perf_counter()
            model.generate(ids, attention_mask=mask, **kwargs)
            speeds.append(batch * NEW_TOKENS / (time.perf_counter() - start))
    return statistics.median(speeds)
