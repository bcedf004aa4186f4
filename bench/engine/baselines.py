"""In-process baselines on the same model: one request at a time, and one left-padded static batch.

Both run `model.generate` (greedy, EOS off) on the built-in model with its LM head trimmed to the tokenizer's
rows (a view sharing memory with the embedding), as llmapi's engine does. Run them in a child process
(`run_in_child`) so the benchmark's client process never starts torch's thread pool.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

TokenIds = Sequence[int]


def run_in_child(job: str, **kwargs: Any) -> Any:
    """Run `sequential`, `static_batch` or `save_for_serving` with `kwargs` in a fresh spawned process."""
    jobs = {"sequential": sequential, "static_batch": static_batch, "save_for_serving": save_for_serving}
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(jobs[job], **kwargs).result()


def sequential(
    *, model_name: str, dtype: str, threads: int, rounds: Sequence[Sequence[TokenIds]], max_new_tokens: int
) -> list[dict[str, float]]:
    """Per round: each prompt alone, one after the other; tokens/s over the whole round."""
    model = _load(model_name, dtype, threads)
    _generate(model, [rounds[0][0]], 8)  # warm-up
    results = []
    for prompts in rounds:
        start = time.perf_counter()
        tokens = sum(_generate(model, [prompt], max_new_tokens) for prompt in prompts)
        wall = time.perf_counter() - start
        results.append({"tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall})
    return results


def static_batch(
    *, model_name: str, dtype: str, threads: int, rounds: Sequence[Sequence[TokenIds]], max_new_tokens: int
) -> list[dict[str, float]]:
    """Per round: all prompts as one left-padded batch; tokens/s of that one `generate`."""
    model = _load(model_name, dtype, threads)
    _generate(model, rounds[0], 8)  # warm-up at the same batch size
    results = []
    for prompts in rounds:
        start = time.perf_counter()
        tokens = _generate(model, prompts, max_new_tokens)
        wall = time.perf_counter() - start
        results.append({"tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall})
    return results


def save_for_serving(*, model_name: str, dtype: str, directory: str) -> dict[str, Any]:
    """Save the built-in model `model_name` (head and embedding cut to the tokenizer, EOS off) for another
    server; returns where its GGUF is (None for a model without one) and its end token ids."""
    model, tokenizer = _loaded(model_name, dtype)
    eos = model.generation_config.eos_token_id
    eos_ids = {*(eos if isinstance(eos, list) else [eos] if eos is not None else [])}
    eos_ids |= set(tokenizer.all_special_ids)  # llama.cpp also ends at the GGUF's end-of-turn tokens
    if model.get_input_embeddings().weight.shape[0] > len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    model.generation_config.eos_token_id = None  # generate the full max_tokens, as llmapi's ignore_eos
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return {"gguf": _gguf_of(model_name), "eos_token_ids": sorted(eos_ids)}


def _gguf_of(model_name: str) -> str | None:
    from llmapi.backends.local import gguf_cache

    return str(gguf_cache.bundled_gguf_path(model_name)) if model_name in gguf_cache.BUNDLED else None


def _loaded(model_name: str, dtype: str) -> tuple[Any, Any]:
    import torch

    from llmapi.backends.local.loader import load_causal_lm

    return load_causal_lm(f"builtin:{model_name}", getattr(torch, dtype))


def _load(model_name: str, dtype: str, threads: int) -> Any:
    import torch

    torch.set_num_threads(threads)
    model, tokenizer = _loaded(model_name, dtype)
    rows = len(tokenizer)
    head = model.lm_head
    if head.weight.shape[0] > rows:
        head.weight = torch.nn.Parameter(head.weight.detach()[:rows], requires_grad=False)  # a view
        head.out_features = rows
        model.config.vocab_size = rows
    model.generation_config.eos_token_id = None  # EOS off: every row generates max_new_tokens
    return model


def _generate(model: Any, prompts: Sequence[TokenIds], max_new_tokens: int) -> int:
    """Greedy `generate` on left-padded prompts; returns the number of new tokens."""
    import torch
    from transformers import GenerationConfig

    width = max(len(p) for p in prompts)
    pad = model.generation_config.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in prompts])
    attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, min_new_tokens=0, do_sample=False, pad_token_id=pad
    )
    with torch.inference_mode():
        output = model.generate(input_ids, attention_mask=attention_mask, generation_config=config)
    new_tokens = output.shape[1] - width
    if new_tokens != max_new_tokens:
        raise RuntimeError(f"generate stopped after {new_tokens} of {max_new_tokens} tokens")
    return len(prompts) * new_tokens
