"""Time to first token of a prompt sharing a 500-token prefix with the prompt before it, with and without
prefix caching, engine level (no HTTP), SmolLM2-135M-Instruct in bfloat16.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m bench.engine_levers.prefix_cache [--pairs 5] [--threads 2]

Each pair is a new 500-token prefix (a system prompt) followed by two different 24-token questions, sent
one after the other; the first of a pair pays for the prefix, the second may find it cached. Prints the
median time to first token of both, per setting, and the ratio of the second's without caching to with it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the server sets it, before torch starts OpenMP

import torch

from llmapi.backends.local.loader import load_causal_lm
from llmapi.engine.llm_engine import LLMEngine
from llmapi.engine.sampling_params import SamplingParams

MODEL = "builtin:smollm2-135m-instruct"
PREFIX_TOKENS = 500
QUESTION_TOKENS = 24
PARAMS = SamplingParams(max_tokens=4, temperature=0.0, ignore_eos=True)


def first_token_ms(engine: LLMEngine, request_id: str, prompt: list[int]) -> float:
    """Milliseconds from adding the request to its first output; then runs it to its end."""
    start = time.perf_counter()
    engine.add_request(request_id, prompt, PARAMS)
    first = None
    while engine.has_unfinished():
        outputs = engine.step()
        if first is None and any(o.request_id == request_id for o in outputs):
            first = (time.perf_counter() - start) * 1000
    if first is None:
        raise RuntimeError(f"request {request_id} produced no output")
    return first


def measure(model: object, tokenizer: object, *, prefix_caching: bool, pairs: int) -> tuple[float, float]:
    """Median time to first token (ms) of the first and the second prompt of each pair."""
    vocab = len(tokenizer)  # type: ignore[arg-type]
    engine = LLMEngine(
        model,
        tokenizer,  # type: ignore[arg-type]
        vocab_size=vocab,
        eos_token_id=None,
        max_batch_size=8,
        prefix_caching=prefix_caching,
    )
    rng = random.Random(5)  # the same prompts for both settings

    def tokens(count: int) -> list[int]:
        return [rng.randrange(10, vocab) for _ in range(count)]

    first, second = [], []
    for index in range(pairs + 1):  # the first pair warms up
        prefix = tokens(PREFIX_TOKENS)
        cold = first_token_ms(engine, f"{index}-a", prefix + tokens(QUESTION_TOKENS))
        warm = first_token_ms(engine, f"{index}-b", prefix + tokens(QUESTION_TOKENS))
        if index:
            first.append(cold)
            second.append(warm)
    return statistics.median(first), statistics.median(second)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_causal_lm(MODEL, torch.bfloat16)
    results = {}
    for caching in (False, True):
        results[caching] = measure(model, tokenizer, prefix_caching=caching, pairs=args.pairs)
        cold, warm = results[caching]
        label = "on" if caching else "off"
        print(f"prefix caching {label}: first prompt {cold:.0f} ms, second prompt {warm:.0f} ms (p50)")
    print(f"second prompt's first token, off / on: {results[False][1] / results[True][1]:.1f}x")


if __name__ == "__main__":
    main()
