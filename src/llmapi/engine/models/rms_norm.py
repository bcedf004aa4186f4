from __future__ import annotations

import torch
from torch.nn.functional import rms_norm


class RMSNorm(torch.nn.Module):
    """Root-mean-square normalization over the last dimension, computed in float32 and scaled by `weight`
    in the input's dtype, as transformers' Llama-family norms do (same rounding in bfloat16)."""

    def __init__(self, weight: torch.Tensor, eps: float) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight.detach(), requires_grad=False)
        self.eps = eps

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if hidden.dtype == torch.float32:
            return rms_norm(hidden, self.weight.shape, self.weight, self.eps)
        normalized = rms_norm(hidden.float(), self.weight.shape, None, self.eps)
        return self.weight * normalized.to(hidden.dtype)
