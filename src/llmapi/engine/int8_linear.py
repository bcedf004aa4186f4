from __future__ import annotations

import warnings

import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear


class Int8Linear(torch.nn.Module):
    """An nn.Linear with int8 weights (one scale per output row) and activations quantized per call.

    The int8 matmul takes float32 activations; inputs of another dtype (bfloat16) are cast there and back,
    so the layer drops into a model of any float dtype.
    """

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scales = (weight.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch deprecates quantized tensors in favour of torchao
            qweight = torch.quantize_per_channel(
                weight, scales, torch.zeros_like(scales, dtype=torch.long), axis=0, dtype=torch.qint8
            )
            self.quantized = DynamicQuantizedLinear(  # type: ignore[no-untyped-call]
                linear.in_features, linear.out_features, dtype=torch.qint8
            )
            bias = None if linear.bias is None else linear.bias.detach().float()
            self.quantized.set_weight_bias(qweight, bias)
        self.in_features = linear.in_features
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.quantized(x.float())
        return out.to(x.dtype)
