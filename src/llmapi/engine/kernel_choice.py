"""The dtype a model's matrix products run fastest in on this machine, chosen by timing its own shapes.

bfloat16 halves the bytes a decode step reads, but only CPUs with AMX (or avx512_bf16 with oneDNN's good
paths) multiply it natively; elsewhere torch converts it and a bfloat16 matrix-vector product runs 2-5x
slower than float32. A flag in /proc/cpuinfo does not tell which; a fraction of a second of timing does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from transformers.pytorch_utils import Conv1D

DECODE_BATCHES = (1, 16)  # one stream, and a busy server's batch
BFLOAT16_MARGIN = 0.9  # bfloat16 rounds more: take it only when it is clearly faster
_BUDGET_SECONDS = 0.25  # shapes left untimed past this are not compared
_REPEATS = 3


@dataclass(frozen=True)
class DtypeChoice:
    dtype: torch.dtype
    bfloat16_over_float32: float  # geometric mean of the time ratios over the shapes timed; < 1: bf16 faster
    timed: int  # (shape, batch) pairs timed in both dtypes
    seconds: float  # what the measurement took


def linear_shapes(model: torch.nn.Module, *, limit: int = 4) -> list[tuple[int, int]]:
    """The model's distinct (in_features, out_features) among its linear layers, the most frequent first;
    the output head (the largest, used once a step) is left out."""
    counts: dict[tuple[int, int], int] = {}
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            shape = (module.in_features, module.out_features)
        elif isinstance(module, Conv1D):
            shape = (int(module.weight.shape[0]), int(module.weight.shape[1]))
        else:
            continue
        counts[shape] = counts.get(shape, 0) + 1
    head = getattr(model, "get_output_embeddings", lambda: None)()
    if isinstance(head, torch.nn.Linear) and counts.get((head.in_features, head.out_features)) == 1:
        del counts[(head.in_features, head.out_features)]
    return sorted(counts, key=lambda s: -counts[s])[:limit]


def fastest_dtype(shapes: list[tuple[int, int]], *, budget_seconds: float = _BUDGET_SECONDS) -> DtypeChoice:
    """float32 or bfloat16, whichever multiplies these shapes faster at decode batch sizes.

    Each (shape, batch) is timed in both dtypes back to back (best of a few runs), so load that comes and
    goes hits both alike; timing stops at the budget (after the first pair).
    """
    started = time.perf_counter()
    ratios: list[float] = []
    pairs = [(shape, batch) for shape in shapes for batch in DECODE_BATCHES]
    for (in_features, out_features), batch in pairs:
        if ratios and time.perf_counter() - started > budget_seconds:
            break
        fp32 = _best_time(in_features, out_features, batch, torch.float32)
        bf16 = _best_time(in_features, out_features, batch, torch.bfloat16)
        ratios.append(bf16 / fp32)
    ratio = math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else 1.0
    dtype = torch.bfloat16 if ratio < BFLOAT16_MARGIN else torch.float32
    return DtypeChoice(dtype, ratio, len(ratios), time.perf_counter() - started)


def _best_time(in_features: int, out_features: int, batch: int, dtype: torch.dtype) -> float:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(out_features, in_features, generator=generator).to(dtype)
    x = torch.randn(batch, in_features, generator=generator).to(dtype)
    with torch.inference_mode():
        torch.nn.functional.linear(x, weight)  # warm-up: first-call dispatch and allocation
        best = math.inf
        for _ in range(_REPEATS):
            start = time.perf_counter()
            torch.nn.functional.linear(x, weight)
            best = min(best, time.perf_counter() - start)
    return max(best, 1e-9)
