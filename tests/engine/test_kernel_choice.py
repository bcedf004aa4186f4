from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from llmapi.engine import kernel_choice


def test_linear_shapes_are_the_blocks_shapes_without_the_head() -> None:
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=100))
    assert sorted(kernel_choice.linear_shapes(model)) == [(32, 32), (32, 96), (32, 128), (128, 32)]


@pytest.mark.parametrize(
    ("bf16_seconds", "expected"),
    [(0.5, torch.bfloat16), (0.95, torch.float32), (3.0, torch.float32)],
)
def test_bfloat16_is_taken_only_when_clearly_faster(
    monkeypatch: pytest.MonkeyPatch, bf16_seconds: float, expected: torch.dtype
) -> None:
    def timing(in_features: int, out_features: int, batch: int, dtype: torch.dtype) -> float:
        return bf16_seconds if dtype == torch.bfloat16 else 1.0

    monkeypatch.setattr(kernel_choice, "_best_time", timing)
    choice = kernel_choice.fastest_dtype([(64, 64), (64, 256)])
    assert choice.dtype == expected
    assert choice.timed == 4 and choice.bfloat16_over_float32 == pytest.approx(bf16_seconds)


def test_the_measurement_stops_at_its_budget() -> None:
    choice = kernel_choice.fastest_dtype([(256, 256)] * 50, budget_seconds=0.0)
    assert choice.timed == 1 and choice.dtype in (torch.float32, torch.bfloat16)
