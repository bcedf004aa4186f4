"""What logprobs and logit_bias cost the engine: 16 requests decoding together, each asking for the same.

Two measurements, interleaved round by round (each round starting with another mode), each timed in CPU
seconds of this process (one torch thread), which a busy neighbour on a shared machine disturbs far less than
wall time:
- the engine end to end (`LLMEngine.step` until all 16 are done, 64 new tokens each, EOS off), in bf16;
- the sampler alone on [16, vocabulary] logits, for the vocabularies of the built-in GPT-2 (8,192 tokens)
  and SmolLM2 (49,152).

    .venv/bin/python -m bench.engine.logprobs [--rounds 3] [--models builtin:gpt2-124m-random ...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch

from bench.engine.prompts import PromptSource
from llmapi.backends.local import loader
from llmapi.engine.llm_engine import LLMEngine
from llmapi.engine.sampler import Sampler
from llmapi.engine.sampling_params import SamplingParams
from llmapi.engine.sequence import Sequence as EngineSequence

BATCH, NEW_TOKENS = 16, 64
MODES: dict[str, dict[str, object]] = {
    "off": {},
    "logprobs, no alternatives": {"logprobs": 0},
    "top 5": {"logprobs": 5},
    "top 20": {"logprobs": 20},
    "top 20 + logit_bias (50 ids)": {"logprobs": 20, "logit_bias": tuple((i, 0.5) for i in range(50))},
    "logit_bias (50 ids) only": {"logit_bias": tuple((i, 0.5) for i in range(50))},
}


def engine_rates(source: str, rounds: int) -> dict[str, float]:
    """Generated tokens per CPU second per mode, median of `rounds`."""
    model, tokenizer = loader.load_causal_lm(source, torch.bfloat16)
    engine = LLMEngine(
        model, tokenizer, vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id, max_batch_size=BATCH
    )
    prompts = PromptSource("gpt2-124m-random").prompts(BATCH, seed=1)
    token_ids = [_render(tokenizer, p.content) for p in prompts]
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    for round_index in range(rounds):
        for mode, extra in _rotated(round_index):
            params = SamplingParams(max_tokens=NEW_TOKENS, ignore_eos=True, **extra)  # type: ignore[arg-type]
            for i, ids in enumerate(token_ids):
                engine.add_request(str(i), ids, params)
            started = time.process_time()
            while engine.has_unfinished():
                engine.step()
            rates[mode].append(BATCH * NEW_TOKENS / (time.process_time() - started))
    return {mode: statistics.median(values) for mode, values in rates.items()}


def _render(tokenizer: object, content: str) -> list[int]:
    messages = [{"role": "user", "content": content}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)  # type: ignore[attr-defined]
    return list(tokenizer.encode(text, add_special_tokens=False))  # type: ignore[attr-defined]


class _Decoder:
    def decode(self, token_ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        return "".join(chr(65 + t % 26) for t in token_ids)


def sampler_costs(vocabulary: int, rounds: int, steps: int = 100) -> dict[str, float]:
    """CPU microseconds per `Sampler.sample` call on [16, vocabulary] logits, median of `rounds`."""
    logits = torch.randn(BATCH, vocabulary, dtype=torch.bfloat16)
    costs: dict[str, list[float]] = {mode: [] for mode in MODES}
    for round_index in range(rounds):
        for mode, extra in _rotated(round_index):
            params = SamplingParams(max_tokens=10_000, **extra)  # type: ignore[arg-type]
            seqs = [
                EngineSequence(str(i), [1], params, decoder=_Decoder(), eos_token_id=None)
                for i in range(BATCH)
            ]
            sampler = Sampler(seed=0)
            started = time.process_time()
            for _ in range(steps):
                sampler.sample(logits, seqs)
            costs[mode].append((time.process_time() - started) / steps * 1e6)
    return {mode: statistics.median(values) for mode, values in costs.items()}


def _rotated(round_index: int) -> list[tuple[str, dict[str, object]]]:
    """Each round starts with another mode, so no mode always runs first (or after the same one)."""
    items = list(MODES.items())
    shift = round_index % len(items)
    return items[shift:] + items[:shift]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--models", nargs="*", default=["builtin:gpt2-124m-random", "builtin:smollm2-135m-instruct"]
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {BATCH}, {NEW_TOKENS} new tokens each\n")
    print("Sampler alone, CPU µs per step of 16 rows (bf16 logits):\n")
    micro = {vocab: sampler_costs(vocab, args.rounds) for vocab in (8192, 49152)}
    print("| mode | vocabulary 8,192 | vs off | vocabulary 49,152 | vs off |\n|---|---|---|---|---|")
    for mode in MODES:
        small, large = micro[8192][mode], micro[49152][mode]
        off_small, off_large = micro[8192]["off"], micro[49152]["off"]
        print(
            f"| {mode} | {small:,.0f} | {small / off_small:.2f}x | {large:,.0f} | {large / off_large:.2f}x |"
        )
    for source in args.models:
        print(f"\nEngine end to end, {source}, bf16: generated tokens per CPU second\n")
        rates = engine_rates(source, args.rounds)
        print("| mode | tokens per CPU s | vs off |\n|---|---|---|")
        for mode, rate in rates.items():
            print(f"| {mode} | {rate:,.0f} | {rate / rates['off']:.2f}x |")


if __name__ == "__main__":
    main()
