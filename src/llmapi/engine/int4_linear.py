"""Weight-only int4 linear layers: 4-bit weights in groups along the input, activations in floating point."""

from __future__ import annotations

import torch

from llmapi.engine.int8_linear import KERNEL_DTYPE

# The first that divides in_features. On SmolLM2-135M (with an int4 head), groups of 64 keep 65% of the top-1
# tokens, 32 keep 88% (bench/engine_levers/quant_accuracy.md).
GROUP_SIZES = (32,)
_LEVELS = 15  # 4 bits: 0..15, centred on 8 by the kernel


_ROWS_MULTIPLE = 16  # the packing kernel takes output rows in blocks of 16


def int4_group_size(in_features: int, out_features: int) -> int | None:
    """The group size an Int4Linear uses for this shape; None where the kernel cannot take it."""
    if out_features % _ROWS_MULTIPLE:
        return None
    return next((g for g in GROUP_SIZES if in_features % g == 0), None)


class Int4Linear(torch.nn.Module):
    """An nn.Linear whose weight is stored as 4-bit integers, with a scale and an offset per group of
    `group_size` input columns of each output row ("weight-only int4", asymmetric).

    `torch._weight_int4pack_mm_for_cpu` reads the packed weight (an eighth of float32's bytes) and computes
    w = (q - 8) * scale + zero on the fly, with bfloat16 activations.
    """

    packed: torch.Tensor
    scales_and_zeros: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, linear: torch.nn.Linear, group_size: int) -> None:
        super().__init__()
        out_features, in_features = linear.weight.shape
        if in_features % group_size or out_features % _ROWS_MULTIPLE:
            raise ValueError(
                f"int4 cannot pack a {in_features}->{out_features} layer in groups of {group_size}"
            )
        groups = linear.weight.detach().float().reshape(out_features, in_features // group_size, group_size)
        low = groups.amin(dim=2, keepdim=True)
        scales = ((groups.amax(dim=2, keepdim=True) - low) / _LEVELS).clamp_min(1e-6)
        q = ((groups - low) / scales).round().clamp(0, _LEVELS).to(torch.int32)
        zeros = low + scales * 8
        packed = torch._convert_weight_to_int4pack_for_cpu(q.reshape(out_features, in_features), 1)
        scales_and_zeros = torch.cat([scales, zeros], dim=2).transpose(0, 1).contiguous()  # [groups, out, 2]
        self.register_buffer("packed", packed)
        self.register_buffer("scales_and_zeros", scales_and_zeros.to(KERNEL_DTYPE))
        bias = None if linear.bias is None else linear.bias.detach().to(KERNEL_DTYPE)
        self.register_buffer("bias", bias)
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).to(KERNEL_DTYPE)
        out = torch._weight_int4pack_mm_for_cpu(rows, self.packed, self.group_size, self.scales_and_zeros)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, group_size={self.group_size}"
        )


def int4_kernel_available() -> bool:
    """Whether this torch build has the weight-only int4 CPU kernels."""
    return hasattr(torch, "_convert_weight_to_int4pack_for_cpu") and hasattr(
        torch, "_weight_int4pack_mm_for_cpu"
    )
