"""Time and profile engine decode steps of the built-in GPT-2-small shape at a given batch size.

Usage: python -m bench.engine_levers.profile_step [batch] [bf16|fp32] [none|int8] [--profile]
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from llmapi.backends.local.builtin import build_builtin_model
from llmapi.engine.llm_engine import LLMEngine
from llmapi.engine.sampling_params import SamplingParams
from llmapi.types import Quantization


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    batch = int(args[0]) if args else 1
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args[1] if len(args) > 1 else "bf16"]
    torch.set_num_threads(2)
    model, tokenizer = build_builtin_model("gpt2-124m-random", dtype)
    quantization: Quantization = "int8" if len(args) > 2 and args[2] == "int8" else "none"
    decoder: Any = tokenizer
    engine = LLMEngine(
        model,
        decoder,
        vocab_size=len(tokenizer),
        eos_token_id=0,
        max_batch_size=64,
        quantization=quantization,
    )
    g = torch.Generator().manual_seed(1)
    params = SamplingParams(max_tokens=400, ignore_eos=True)
    for i in range(batch):
        engine.add_request(
            str(i), torch.randint(1, len(tokenizer), (24 + i % 9,), generator=g).tolist(), params
        )
    for _ in range(20):
        engine.step()
    start = time.perf_counter()
    steps = 50
    for _ in range(steps):
        engine.step()
    ms = (time.perf_counter() - start) / steps * 1000
    print(f"batch {batch} {dtype} {quantization}: {ms:.2f} ms/step, {batch * 1000 / ms:.1f} tok/s")
    if "--profile" in sys.argv:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(10):
                engine.step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
