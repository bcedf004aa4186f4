"""GPT-2 written for the engine: the step's tokens packed in one row, attention over the engine's KV cache.

Weights are taken over from a loaded `GPT2LMHeadModel`. GPT-2 stores its projections as `Conv1D` ([in, out]);
here they become plain `torch.nn.Linear` ([out, in]) so the quantization rewrites apply to them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, cast

import torch
from torch.nn import functional
from transformers.activations import ACT2FN

from llmapi.engine.attention import attend
from llmapi.engine.forward_batch import ForwardBatch
from llmapi.engine.models.engine_model import EngineModel

Activation = Callable[[torch.Tensor], torch.Tensor]

# The same functions transformers computes for these names, as single kernels.
_ACTIVATIONS: dict[str, Activation] = {
    "gelu_new": partial(functional.gelu, approximate="tanh"),
    "gelu_pytorch_tanh": partial(functional.gelu, approximate="tanh"),
    "gelu": functional.gelu,
}


class GPT2Attention(torch.nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, layer: int, scaling: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.layer = layer
        self.scaling = scaling
        self.qkv_proj = torch.nn.Linear(hidden_size, 3 * hidden_size, device="meta")
        self.o_proj = torch.nn.Linear(hidden_size, hidden_size, device="meta")

    def forward(self, hidden: torch.Tensor, batch: ForwardBatch) -> torch.Tensor:
        tokens = hidden.shape[0]
        heads = self.qkv_proj(hidden).view(tokens, 3 * self.num_heads, self.head_dim).transpose(0, 1)
        query, key, value = heads.unsqueeze(0).split(self.num_heads, dim=1)  # each [1, heads, tokens, dim]
        out = attend(batch, self.layer, query, key, value, self.scaling)
        return self.o_proj(out.reshape(tokens, -1))  # type: ignore[no-any-return]


class GPT2MLP(torch.nn.Module):
    def __init__(self, hidden_size: int, inner_size: int, activation: Activation) -> None:
        super().__init__()
        self.up_proj = torch.nn.Linear(hidden_size, inner_size, device="meta")
        self.down_proj = torch.nn.Linear(inner_size, hidden_size, device="meta")
        self.activation = activation

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.activation(self.up_proj(hidden)))  # type: ignore[no-any-return]


class GPT2Block(torch.nn.Module):
    def __init__(self, attention: GPT2Attention, mlp: GPT2MLP, hidden_size: int, eps: float) -> None:
        super().__init__()
        self.attention_norm = torch.nn.LayerNorm(hidden_size, eps=eps, device="meta")
        self.attention = attention
        self.mlp_norm = torch.nn.LayerNorm(hidden_size, eps=eps, device="meta")
        self.mlp = mlp

    def forward(self, hidden: torch.Tensor, batch: ForwardBatch) -> torch.Tensor:
        hidden = hidden + self.attention(self.attention_norm(hidden), batch)
        return hidden + self.mlp(self.mlp_norm(hidden))  # type: ignore[no-any-return]


class GPT2Model(EngineModel):
    """GPT-2: learned position embeddings, pre-LayerNorm blocks, a head tied to the token embedding."""

    def __init__(self, config: Any, vocab_size: int) -> None:
        super().__init__()
        hidden, heads = int(config.n_embd), int(config.n_head)
        self.num_layers = int(config.n_layer)
        self.num_kv_heads = heads
        self.head_dim = hidden // heads
        self.max_model_len = int(config.n_positions)
        self.token_embedding = torch.nn.Embedding(int(config.vocab_size), hidden, device="meta")
        self.position_embedding = torch.nn.Embedding(self.max_model_len, hidden, device="meta")
        activation_name = str(config.activation_function)
        activation = _ACTIVATIONS.get(activation_name) or ACT2FN[activation_name]
        eps = float(config.layer_norm_epsilon)
        self.blocks = torch.nn.ModuleList(
            GPT2Block(
                GPT2Attention(hidden, heads, layer, _scaling(config, layer, hidden // heads)),
                GPT2MLP(hidden, int(config.n_inner or 4 * hidden), activation),
                hidden,
                eps,
            )
            for layer in range(self.num_layers)
        )
        self.final_norm = torch.nn.LayerNorm(hidden, eps=eps, device="meta")
        self.lm_head = torch.nn.Linear(hidden, vocab_size, bias=False, device="meta")

    def forward(
        self,
        token_ids: torch.Tensor,
        positions: torch.Tensor,
        batch: ForwardBatch,
        logit_rows: torch.Tensor,
    ) -> torch.Tensor:
        hidden = self.token_embedding(token_ids) + self.position_embedding(positions)
        for block in self.blocks:
            hidden = block(hidden, batch)
        return self.lm_head(self.final_norm(hidden[logit_rows]))  # type: ignore[no-any-return]


def build_gpt2(model: torch.nn.Module, vocab_size: int) -> GPT2Model:
    """The engine's GPT-2 holding `model`'s weights (shared where the layout is the same), its head cut to
    `vocab_size` rows."""
    config: Any = model.config
    if getattr(config, "add_cross_attention", False):
        raise ValueError("GPT-2 with cross-attention is not supported by the local engine")
    source: Any = model
    transformer = source.transformer
    own = GPT2Model(config, vocab_size)
    _take(own.token_embedding, "weight", transformer.wte.weight)
    _take(own.position_embedding, "weight", transformer.wpe.weight)
    for own_block, theirs in zip(own.blocks, transformer.h, strict=True):
        block = cast(GPT2Block, own_block)
        _take_norm(block.attention_norm, theirs.ln_1)
        _take_norm(block.mlp_norm, theirs.ln_2)
        _take_conv1d(block.attention.qkv_proj, theirs.attn.c_attn)
        _take_conv1d(block.attention.o_proj, theirs.attn.c_proj)
        _take_conv1d(block.mlp.up_proj, theirs.mlp.c_fc)
        _take_conv1d(block.mlp.down_proj, theirs.mlp.c_proj)
    _take_norm(own.final_norm, transformer.ln_f)
    _take(own.lm_head, "weight", source.get_output_embeddings().weight[:vocab_size])
    return own.eval()


def _scaling(config: Any, layer: int, head_dim: int) -> float:
    scaling = head_dim**-0.5 if config.scale_attn_weights else 1.0
    if config.scale_attn_by_inverse_layer_idx:
        scaling /= float(layer + 1)
    return scaling


def _take_norm(own: torch.nn.LayerNorm, theirs: torch.nn.LayerNorm) -> None:
    _take(own, "weight", theirs.weight)
    _take(own, "bias", theirs.bias)


def _take_conv1d(own: torch.nn.Linear, conv1d: Any) -> None:
    """Conv1D computes x @ weight + bias with weight [in, out]; Linear wants [out, in]."""
    _take(own, "weight", conv1d.weight.t().contiguous())
    _take(own, "bias", conv1d.bias)


def _take(module: torch.nn.Module, name: str, weight: torch.Tensor) -> None:
    expected = getattr(module, name).shape
    if weight.shape != expected:
        raise ValueError(
            f"GPT-2 {type(module).__name__}.{name}: shape {tuple(weight.shape)}, expected {tuple(expected)}"
        )
    setattr(module, name, torch.nn.Parameter(weight.detach(), requires_grad=False))
