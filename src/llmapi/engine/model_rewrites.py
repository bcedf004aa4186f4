"""Rewrites of a loaded model's layers that keep what it computes (up to rounding) and make it faster."""

from __future__ import annotations

import torch
from transformers.pytorch_utils import Conv1D

from llmapi.engine.int8_linear import Int8Linear


def conv1d_to_linear(model: torch.nn.Module) -> int:
    """Replace GPT-2-style Conv1D layers (weight [in, out]) by nn.Linear (weight [out, in]); returns how many.

    nn.Linear is what int8 quantization and the fastest bfloat16 matmul kernels expect.
    """
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv1D):
                in_features, out_features = child.weight.shape
                linear = torch.nn.Linear(in_features, out_features, device="meta")
                linear.weight = torch.nn.Parameter(
                    child.weight.detach().t().contiguous(), requires_grad=False
                )
                linear.bias = torch.nn.Parameter(child.bias.detach().clone(), requires_grad=False)
                setattr(parent, name, linear)
                replaced += 1
    return replaced


def quantize_linears_int8(model: torch.nn.Module) -> int:
    """Replace every nn.Linear (the output head included) by an Int8Linear; returns how many."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, name, Int8Linear(child))
                replaced += 1
    return replaced
