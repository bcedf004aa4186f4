"""One decode step of SmolLM2-135M-Instruct through the engine's own Llama code against transformers' modules
(`model_code` "auto" vs "transformers"), at batch 1 and 16, in bf16 and fp32; each configuration 3 times,
interleaved, so that load on a shared machine spreads over both.

Usage: python -m bench.engine_levers.own_model_code [--steps N] [--threads T] [--dtypes bf16,fp32]
    [--batches 1,16]
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from llmapi.backends.local.loader import load_causal_lm
from llmapi.engine.llm_engine import LLMEngine
from llmapi.engine.sampling_params import SamplingParams
from llmapi.types import ModelCode

SOURCE = "builtin:smollm2-135m-instruct"
REPEATS = 3


def step_ms(model: Any, tokenizer: Any, model_code: ModelCode, batch: int, steps: int) -> float:
    """The median milliseconds of an engine step with `batch` sequences decoding (prompts of 24-32 tokens,
    prefilled and warmed up first): a median, as a shared machine stalls some steps."""
    engine = LLMEngine(
        copy.deepcopy(model),
        tokenizer,
        vocab_size=len(tokenizer),
        eos_token_id=None,
        max_batch_size=64,
        model_code=model_code,
    )
    generator = torch.Generator().manual_seed(1)
    params = SamplingParams(max_tokens=steps + 40, temperature=0.0)
    for i in range(batch):
        prompt = torch.randint(1, len(tokenizer), (24 + i % 9,), generator=generator).tolist()
        engine.add_request(str(i), prompt, params)
    for _ in range(10):
        engine.step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        engine.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    args = sys.argv[1:]
    steps = int(args[args.index("--steps") + 1]) if "--steps" in args else 30
    torch.set_num_threads(int(args[args.index("--threads") + 1]) if "--threads" in args else 2)
    print("| dtype | batch | own code ms/step | transformers ms/step | speed-up |")
    print("|---|---|---|---|---|")
    dtypes = args[args.index("--dtypes") + 1].split(",") if "--dtypes" in args else ["bf16", "fp32"]
    batches = args[args.index("--batches") + 1].split(",") if "--batches" in args else ["1", "16"]
    for name in dtypes:
        model, tokenizer = load_causal_lm(SOURCE, {"bf16": torch.bfloat16, "fp32": torch.float32}[name])
        for batch in map(int, batches):
            own, theirs = [], []
            for _ in range(REPEATS):
                own.append(step_ms(model, tokenizer, "auto", batch, steps))
                theirs.append(step_ms(model, tokenizer, "transformers", batch, steps))
            ratios = sorted(t / o for o, t in zip(own, theirs, strict=True))
            print(
                f"| {name} | {batch} | {min(own):.1f}-{max(own):.1f} | {min(theirs):.1f}-{max(theirs):.1f} "
                f"| {ratios[0]:.2f}-{ratios[-1]:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
