"""The engine core in its own process (`LLMAPI_ENGINE__PROCESS=true`) against the in-thread engine, through
HTTP: `llmapi serve` with the built-in GPT-2 small (random weights), 16 and 64 concurrent streaming chat
completions (24-32 token prompts, --max-tokens new tokens each, EOS ignored), the modes alternated per run.

    .venv/bin/python -m bench.engine_levers.engine_process [--runs 2] [--max-tokens 64]

Prints one line per round: mode, streams, aggregate tokens/s, TTFT p50 and inter-token latency p50/p99.

Measured 2026-12-07 with --runs 1 --max-tokens 32, three passes, float32, on the 2-core machine shared with
four other engineers (load average 6-10: noisy), aggregate tokens/s per pass:

    streams  in-thread          process (OMP_WAIT_POLICY=PASSIVE)   process (libgomp's default spin)
    16       31.6  23.2  52.3   15.7  36.1  43.7                    6.4
    64       49.5  44.8  94.9   41.8  41.6  64.2                    13.5

The in-thread engine won 5 of 6 pairs, so it stays the default (engine.process: false); in the process, a
spinning OpenMP pool starves the HTTP process on two cores, so the engine process also sleeps (PASSIVE).
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
