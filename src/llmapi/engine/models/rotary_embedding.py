"""Rotary position embedding as cos/sin tables over every position, applied to packed tokens by indexing."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

# Types whose frequencies change with the length of the sequence at hand: one table cannot serve them.
_LENGTH_DEPENDENT = frozenset({"dynamic", "longrope"})


class RotaryEmbedding(torch.nn.Module):
    """cos and sin of every position's rotation angles ([max_positions, head_dim / 2], in the model's dtype,
    as transformers rounds them), computed once from the config's `rope_parameters`."""

    def __init__(self, config: Any, *, head_dim: int, dtype: torch.dtype) -> None:
        super().__init__()
        inverse_frequencies, scaling = _inverse_frequencies(config, head_dim)
        positions = torch.arange(int(config.max_position_embeddings), dtype=torch.float32)
        angles = torch.outer(positions, inverse_frequencies)
        self.cos = torch.nn.Buffer((angles.cos() * scaling).to(dtype), persistent=False)
        self.sin = torch.nn.Buffer((angles.sin() * scaling).to(dtype), persistent=False)

    def rotation(self, positions: torch.Tensor) -> Rotation:
        """The rotation of tokens at `positions` [tokens], for `rotate_` in every layer of one pass."""
        return Rotation(self.cos[positions].unsqueeze(1), self.sin[positions].unsqueeze(1))


class Rotation(NamedTuple):
    cos: torch.Tensor  # [tokens, 1, head_dim / 2]
    sin: torch.Tensor


def rotate_(states: torch.Tensor, rotation: Rotation) -> None:
    """Rotate `states` [tokens, heads, head_dim] in place, each token by its own angles."""
    first, second = states.chunk(2, dim=-1)
    rotated_first = first * rotation.cos - second * rotation.sin
    rotated_second = second * rotation.cos + first * rotation.sin
    first.copy_(rotated_first)
    second.copy_(rotated_second)


def _inverse_frequencies(config: Any, head_dim: int) -> tuple[torch.Tensor, float]:
    parameters = dict(getattr(config, "rope_parameters", None) or {})
    rope_type = str(parameters.get("rope_type", "default"))
    if rope_type == "default":
        theta = float(parameters.get("rope_theta", getattr(config, "rope_theta", 10000.0)))
        exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
        return 1.0 / (theta**exponents), 1.0
    if rope_type in _LENGTH_DEPENDENT or rope_type not in ROPE_INIT_FUNCTIONS:
        raise ValueError(
            f"the engine's own model code has no rotary embedding of type {rope_type!r}; "
            "run this model through transformers (LLMAPI_ENGINE__MODEL_CODE=transformers)"
        )
    inverse_frequencies, scaling = ROPE_INIT_FUNCTIONS[rope_type](config, None)
    if inverse_frequencies.shape != (head_dim // 2,):
        raise ValueError(f"a rotary embedding over part of each head ({rope_type!r}) is not supported")
    return inverse_frequencies.float(), float(scaling)
