from __future__ import annotations

import torch

from llmapi.engine.forward_batch import ForwardBatch


class EngineModel(torch.nn.Module):
    """A causal LM as the engine runs it: the tokens of one step packed in one row, next-token logits of
    chosen rows out.

    Projections are plain `torch.nn.Linear` modules (fused where that makes fewer, larger products), so the
    quantization rewrites of `model_rewrites` apply to them as to transformers' models.
    """

    num_layers: int
    num_kv_heads: int
    head_dim: int
    max_model_len: int

    def forward(
        self,
        token_ids: torch.Tensor,  # [tokens] long
        positions: torch.Tensor,  # [tokens] long, each token's position in its sequence
        batch: ForwardBatch,
        logit_rows: torch.Tensor,  # [rows] long, indices into the packed tokens
    ) -> torch.Tensor:
        """Logits [rows, vocab] for the tokens at `logit_rows`, in the model's dtype."""
        raise NotImplementedError
