"""Rewrites of a loaded model's layers that keep what it computes (up to rounding) and make it faster."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from transformers.pytorch_utils import Conv1D

from llmapi.engine.int4_linear import Int4Linear, int4_group_size, int4_kernel_available
from llmapi.engine.int8_linear import Int8Linear, int8_kernel_available

logger = logging.getLogger(__name__)


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
    """Replace every nn.Linear (the output head included) by a weight-only Int8Linear; returns how many.

    Where this torch build lacks the kernel, the model stays as it is (logged) and 0 is returned.
    """
    if not int8_kernel_available():
        logger.warning(
            "quantization int8: torch %s has no _weight_int8pack_mm; not quantized", torch.__version__
        )
        return 0
    return _replace_linears(model, Int8Linear)


def quantize_linears_int4(model: torch.nn.Module) -> int:
    """Replace every nn.Linear but the output head by a weight-only Int4Linear; returns how many.

    The head stays in floating point: with it in int4, SmolLM2-135M keeps 85% of its top-1 tokens, without
    99% (bench/engine_levers/quant_accuracy.md). A layer whose shape the kernel cannot pack (input width no
    group size divides, output rows not a multiple of 16) stays in floating point too (logged). Where this
    torch build lacks the kernels, the model stays as it is (logged) and 0 is returned.
    """
    if not int4_kernel_available():
        logger.warning(
            "quantization int4: torch %s has no int4 CPU kernels; not quantized", torch.__version__
        )
        return 0
    head = _output_head(model)

    def int4(linear: torch.nn.Linear) -> torch.nn.Module:
        group_size = int4_group_size(linear.in_features, linear.out_features)
        if linear is head:
            return linear
        if group_size is None:
            logger.warning(
                "quantization int4: a %d->%d linear layer stays unquantized (shape the kernel cannot pack)",
                linear.in_features,
                linear.out_features,
            )
            return linear
        return Int4Linear(linear, group_size)

    return _replace_linears(model, int4)


def _output_head(model: torch.nn.Module) -> torch.nn.Module | None:
    """The layer that turns hidden states into logits: transformers' output embeddings, or `lm_head`."""
    get_output_embeddings = getattr(model, "get_output_embeddings", None)
    head = get_output_embeddings() if callable(get_output_embeddings) else getattr(model, "lm_head", None)
    return head if isinstance(head, torch.nn.Module) else None


def _replace_linears(model: torch.nn.Module, rewrite: Callable[[torch.nn.Linear], torch.nn.Module]) -> int:
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                new = rewrite(child)
                setattr(parent, name, new)
                replaced += new is not child
    return replaced
