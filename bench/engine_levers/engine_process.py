"""The engine core in its own process (`LLMAPI_ENGINE__PROCESS=true`) against the in-thread engine, through
HTTP: `llmapi serve` with the built-in GPT-2 small (random weights), 16 and 64 concurrent streaming chat
completions (24-32 token prompts, --max-tokens new tokens each, EOS ignored), the modes alternated per run.

    .venv/bin/python -m bench.engine_levers.engine_process [--runs 2] [--max-tokens 64]

Prints one line per round: mode, streams, aggregate tokens/s, TTFT p50 and inter-token latency p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import llmapi.backends.local
from bench.engine import peers
from bench.engine.load import Target, client_for, run_round
from bench.engine.prompts import PromptSource

MODEL = "gpt2-124m-random"
TOKENIZER = Path(llmapi.backends.local.__file__).parent / "assets" / MODEL
MODES = {"in-thread": "false", "process": "true"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--streams", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    source = PromptSource(TOKENIZER)
    print("mode       streams  tok/s   ttft_p50_ms  itl_p50_ms  itl_p99_ms")
    with tempfile.TemporaryDirectory() as workdir:
        for run in range(args.runs):
            for mode, process in MODES.items():
                env = {"LLMAPI_ENGINE__PROCESS": process}
                with peers.llmapi(Path(workdir), MODEL, dtype=args.dtype, extra_env=env) as (_, target):
                    asyncio.run(_rounds(mode, target, source, run, args.streams, args.max_tokens))


async def _rounds(
    mode: str, target: Target, source: PromptSource, seed: int, streams: list[int], max_tokens: int
) -> None:
    client = client_for(target)
    await run_round(client, target, source.prompts(4, seed=99), 8)  # warm-up
    for count in streams:
        stats = await run_round(client, target, source.prompts(count, seed=seed), max_tokens)
        print(
            f"{mode:<10} {count:>7}  {stats.tokens_per_s:6.1f}  {stats.ttft_p50_ms:11.0f}"
            f"  {stats.itl_p50_ms:10.1f}  {stats.itl_p99_ms:10.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
