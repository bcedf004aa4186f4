"""The engine's attention as a transformers AttentionInterface function, for architectures the engine has
no model code of its own for: transformers' modules compute the projections, `attend` keeps the cache."""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface

from llmapi.engine.attention import attend
from llmapi.engine.forward_batch import ForwardBatch

SLOT_ATTENTION = "llmapi_slot_attention"
FORWARD_BATCH_KWARG = "llmapi_forward_batch"


def register_slot_attention() -> None:
    """Make SLOT_ATTENTION known to transformers (idempotent)."""
    AttentionInterface.register(SLOT_ATTENTION, slot_attention)


def slot_attention(
    module: torch.nn.Module,
    query: torch.Tensor,  # [1, heads, tokens, head_dim]
    key: torch.Tensor,  # [1, kv_heads, tokens, head_dim]
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    batch = kwargs.get(FORWARD_BATCH_KWARG)
    if not isinstance(batch, ForwardBatch):
        raise RuntimeError(f"{SLOT_ATTENTION} runs only inside ModelRunner, which passes a ForwardBatch")
    if query.shape[0] != 1:
        raise RuntimeError(f"{SLOT_ATTENTION} expects the tokens packed in one row, got {query.shape[0]}")
    layer: int = getattr(module, "layer_idx", -1)
    return attend(batch, layer, query, key, value, scaling), None
