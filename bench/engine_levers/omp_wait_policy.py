"""OMP_WAIT_POLICY PASSIVE vs ACTIVE for SmolLM2 decode steps, alone and beside a busy event loop.

    .venv/bin/python -m bench.engine_levers.omp_wait_policy [--rounds 2]

OpenMP reads the policy once, when torch loads, so each measurement is a fresh process (alternating the
policies, --rounds times). Each decodes 32 steps at batch 1 and at batch 8 (float32, the engine's own model
code) and reports the median step time; "beside a loop" runs a Python thread that works 1 ms of every 2
(an HTTP event loop streaming tokens) during the steps. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

MODEL = "builtin:smollm2-135m-instruct"
STEPS = 32


def busy_loop(stop: threading.Event) -> None:
    while not stop.is_set():
        until = time.perf_counter() + 0.001
        while time.perf_counter() < until:
            pass
        time.sleep(0.001)


def measure() -> dict[str, float]:
    import torch

    from llmapi.backends.local.loader import configure_threads, load_causal_lm
    from llmapi.engine.llm_engine import LLMEngine
    from llmapi.engine.sampling_params import SamplingParams

    configure_threads(None)
    model, tokenizer = load_causal_lm(MODEL, torch.float32)
    engine = LLMEngine(
        model, tokenizer, vocab_size=len(tokenizer), eos_token_id=None, max_batch_size=8, seed=0
    )
    results = {}
    for beside_loop in (False, True):
        for batch in (1, 8):
            params = SamplingParams(max_tokens=STEPS + 1, ignore_eos=True)
            for i in range(batch):
                engine.add_request(f"{beside_loop}-{batch}-{i}", list(range(100 + i, 120 + i)), params)
            engine.step()  # the prefill
            stop = threading.Event()
            loop = threading.Thread(target=busy_loop, args=(stop,), daemon=True)
            if beside_loop:
                loop.start()
            times = []
            while engine.has_unfinished():
                start = time.perf_counter()
                engine.step()
                times.append(time.perf_counter() - start)
            stop.set()
            results[f"batch {batch}{', beside a loop' if beside_loop else ''}"] = (
                statistics.median(times) * 1000
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure()))
        return
    runs: dict[str, list[dict[str, float]]] = {"PASSIVE": [], "ACTIVE": []}
    for _ in range(args.rounds):
        for policy in runs:
            env = {**os.environ, "OMP_WAIT_POLICY": policy}
            out = subprocess.run(
                [sys.executable, "-m", "bench.engine_levers.omp_wait_policy", "--child"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            runs[policy].append(json.loads(out.strip().splitlines()[-1]))
            print(policy, runs[policy][-1], flush=True)
    cases = list(runs["PASSIVE"][0])
    print(f"\nload average {os.getloadavg()[0]:.2f}; median step ms, range over {args.rounds} rounds\n")
    print("| case | PASSIVE | ACTIVE |\n|---|---|---|")
    for case in cases:
        cells = []
        for policy in runs:
            values = [run[case] for run in runs[policy]]
            cells.append(f"{min(values):.1f}-{max(values):.1f}")
        print(f"| {case} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
