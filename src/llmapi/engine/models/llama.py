"""The Llama family (Llama, SmolLM, Mistral without a sliding window, Qwen2, Qwen3) as the engine runs it:
the step's tokens packed in one row, fused QKV and gate/up projections, attention over the KV cache."""

from __future__ import annotations

import torch
from torch.nn.functional import embedding, silu

from llmapi.engine.attention import attend
from llmapi.engine.forward_batch import ForwardBatch
from llmapi.engine.models.engine_model import EngineModel
from llmapi.engine.models.rms_norm import RMSNorm
from llmapi.engine.models.rotary_embedding import RotaryEmbedding, Rotation, rotate_


class LlamaAttention(torch.nn.Module):
    def __init__(
        self,
        *,
        layer: int,
        qkv_proj: torch.nn.Linear,
        o_proj: torch.nn.Linear,
        num_heads: int,
        num_kv_heads: int,
        head_dim: int,
        q_norm: RMSNorm | None = None,
        k_norm: RMSNorm | None = None,
    ) -> None:
        super().__init__()
        self.layer = layer
        self.qkv_proj = qkv_proj
        self.o_proj = o_proj
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.scaling = head_dim**-0.5
        self.q_norm, self.k_norm = q_norm, k_norm

    def forward(self, hidden: torch.Tensor, rotation: Rotation, batch: ForwardBatch) -> torch.Tensor:
        tokens = hidden.shape[0]
        qkv = self.qkv_proj(hidden).view(tokens, self.num_heads + 2 * self.num_kv_heads, self.head_dim)
        query, key, value = qkv.split([self.num_heads, self.num_kv_heads, self.num_kv_heads], dim=1)
        if self.q_norm is not None and self.k_norm is not None:
            query, key = self.q_norm(query), self.k_norm(key)
            rotate_(query, rotation)
            rotate_(key, rotation)
        else:  # query and key at once
            rotate_(qkv[:, : self.num_heads + self.num_kv_heads], rotation)
        out = attend(
            batch,
            self.layer,
            query.transpose(0, 1).unsqueeze(0),
            key.transpose(0, 1).unsqueeze(0),
            value.transpose(0, 1).unsqueeze(0),
            self.scaling,
        )
        result: torch.Tensor = self.o_proj(out.reshape(tokens, self.num_heads * self.head_dim))
        return result


class LlamaMLP(torch.nn.Module):
    def __init__(self, gate_up_proj: torch.nn.Linear, down_proj: torch.nn.Linear) -> None:
        super().__init__()
        self.gate_up_proj = gate_up_proj
        self.down_proj = down_proj

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(hidden).chunk(2, dim=-1)
        result: torch.Tensor = self.down_proj(silu(gate).mul_(up))
        return result


class LlamaDecoderLayer(torch.nn.Module):
    def __init__(
        self,
        self_attn: LlamaAttention,
        mlp: LlamaMLP,
        input_layernorm: RMSNorm,
        post_attention_layernorm: RMSNorm,
    ) -> None:
        super().__init__()
        self.self_attn = self_attn
        self.mlp = mlp
        self.input_layernorm = input_layernorm
        self.post_attention_layernorm = post_attention_layernorm

    def forward(self, hidden: torch.Tensor, rotation: Rotation, batch: ForwardBatch) -> torch.Tensor:
        hidden = hidden + self.self_attn(self.input_layernorm(hidden), rotation, batch)
        result: torch.Tensor = hidden + self.mlp(self.post_attention_layernorm(hidden))
        return result


class LlamaModel(EngineModel):
    def __init__(
        self,
        *,
        embed_tokens: torch.Tensor,
        layers: list[LlamaDecoderLayer],
        rotary: RotaryEmbedding,
        norm: RMSNorm,
        lm_head: torch.nn.Linear,
        num_kv_heads: int,
        head_dim: int,
        max_model_len: int,
    ) -> None:
        super().__init__()
        self.embed_tokens = torch.nn.Parameter(embed_tokens.detach(), requires_grad=False)
        self.layers = torch.nn.ModuleList(layers)
        self.rotary = rotary
        self.norm = norm
        self.lm_head = lm_head
        self.num_layers = len(layers)
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.max_model_len = max_model_len

    def forward(
        self,
        token_ids: torch.Tensor,
        positions: torch.Tensor,
        batch: ForwardBatch,
        logit_rows: torch.Tensor,
    ) -> torch.Tensor:
        hidden = embedding(token_ids, self.embed_tokens)
        rotation = self.rotary.rotation(positions)
        for layer in self.layers:
            hidden = layer(hidden, rotation, batch)
        logits: torch.Tensor = self.lm_head(self.norm(hidden[logit_rows]))
        return logits
