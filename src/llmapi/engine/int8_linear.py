"""Weight-only int8 linear layers: int8 weights, activations kept in floating point."""

from __future__ import annotations

import torch

# torch 2.13's CPU kernels for packed int8/int4 weights are vectorized for bfloat16 activations; with float32
# activations they run a scalar loop, 10-30x slower than a dense float32 matmul (measured on AVX2 at batch 1
# and 16). A float32 model therefore multiplies in bfloat16 and gets its output back in float32.
KERNEL_DTYPE = torch.bfloat16


class Int8Linear(torch.nn.Module):
    """An nn.Linear whose weight is stored as int8 with one scale per output row ("weight-only int8").

    The activations are not quantized: `torch._weight_int8pack_mm` reads int8 weights (a quarter of float32's
    bytes, half of bfloat16's) and multiplies them with bfloat16 activations.
    """

    qweight: torch.Tensor
    scales: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scales = (weight.abs().amax(dim=1) / 127.0).clamp_min(1e-12)
        qweight = (weight / scales[:, None]).round().clamp(-127, 127).to(torch.int8)
        self.register_buffer("qweight", qweight.contiguous())
        self.register_buffer("scales", scales.to(KERNEL_DTYPE))
        bias = None if linear.bias is None else linear.bias.detach().to(KERNEL_DTYPE)
        self.register_buffer("bias", bias)
        self.in_features = linear.in_features
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).to(KERNEL_DTYPE)
        out = torch._weight_int8pack_mm(rows, self.qweight, self.scales)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        )


def int8_kernel_available() -> bool:
    """Whether this torch build has the weight-only int8 CPU kernel."""
    return hasattr(torch, "_weight_int8pack_mm")
