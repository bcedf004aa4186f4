"""Build the engine's Llama-family module from a loaded transformers model, taking its weights over.

Norms, embeddings and the output head share the transformers tensors; the fused QKV and gate/up projections
are new tensors (the concatenation of the originals). No reference to a transformers module is kept, so the
caller can drop the transformers model.
"""

from __future__ import annotations

from typing import Any

import torch

from llmapi.engine.models.engine_model import EngineModel
from llmapi.engine.models.llama import LlamaAttention, LlamaDecoderLayer, LlamaMLP, LlamaModel
from llmapi.engine.models.rms_norm import RMSNorm
from llmapi.engine.models.rotary_embedding import RotaryEmbedding


def build_llama(model: torch.nn.Module, vocab_size: int) -> EngineModel:
    """The engine's module for a LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM or Qwen3ForCausalLM;
    ValueError for configurations it does not compute as transformers does."""
    hf: Any = model
    config = hf.config.get_text_config()
    _refuse_unsupported(config)
    num_heads = int(config.num_attention_heads)
    num_kv_heads = int(getattr(config, "num_key_value_heads", None) or num_heads)
    head_dim = int(getattr(config, "head_dim", None) or int(config.hidden_size) // num_heads)
    embed: torch.Tensor = hf.get_input_embeddings().weight
    rotary = RotaryEmbedding(config, head_dim=head_dim, dtype=embed.dtype)
    eps = float(config.rms_norm_eps)
    layers = []
    for index, hf_layer in enumerate(hf.model.layers):
        attn, mlp = hf_layer.self_attn, hf_layer.mlp
        q_norm = getattr(attn, "q_norm", None)
        k_norm = getattr(attn, "k_norm", None)
        attention = LlamaAttention(
            layer=index,
            qkv_proj=_fused_linear(attn.q_proj, attn.k_proj, attn.v_proj),
            o_proj=_fused_linear(attn.o_proj),
            num_heads=num_heads,
            num_kv_heads=num_kv_heads,
            head_dim=head_dim,
            q_norm=None if q_norm is None else RMSNorm(q_norm.weight, eps),
            k_norm=None if k_norm is None else RMSNorm(k_norm.weight, eps),
        )
        layers.append(
            LlamaDecoderLayer(
                attention,
                LlamaMLP(_fused_linear(mlp.gate_proj, mlp.up_proj), _fused_linear(mlp.down_proj)),
                RMSNorm(hf_layer.input_layernorm.weight, eps),
                RMSNorm(hf_layer.post_attention_layernorm.weight, eps),
            )
        )
    head = hf.get_output_embeddings()
    if head.weight.shape[0] < vocab_size:
        raise ValueError(f"the output head has {head.weight.shape[0]} rows, fewer than {vocab_size} tokens")
    return LlamaModel(
        embed_tokens=embed,
        layers=layers,
        rotary=rotary,
        norm=RMSNorm(hf.model.norm.weight, eps),
        lm_head=_fused_linear(head, rows=vocab_size),
        num_kv_heads=num_kv_heads,
        head_dim=head_dim,
        max_model_len=int(config.max_position_embeddings),
    )


def _refuse_unsupported(config: Any) -> None:
    if getattr(config, "sliding_window", None) or "sliding_attention" in (
        getattr(config, "layer_types", None) or ()
    ):
        raise ValueError("the engine's own Llama-family code has no sliding-window attention")
    activation = getattr(config, "hidden_act", "silu")
    if activation != "silu":
        raise ValueError(
            f"the engine's own Llama-family code computes SiLU MLPs, not {activation!r}; "
            "run this model through transformers (LLMAPI_ENGINE__MODEL_CODE=transformers)"
        )


def _fused_linear(*parts: Any, rows: int | None = None) -> torch.nn.Linear:
    """One nn.Linear computing `parts` side by side (their outputs concatenated), only its first `rows`
    outputs when given. A single part keeps its tensors; a part without a bias gets zeros if another has
    one."""
    weights = [part.weight.detach() for part in parts]
    weight = weights[0] if len(parts) == 1 else torch.cat(weights)
    bias = None
    if any(part.bias is not None for part in parts):
        biases = [
            w.new_zeros(w.shape[0]) if part.bias is None else part.bias.detach()
            for part, w in zip(parts, weights, strict=True)
        ]
        bias = biases[0] if len(parts) == 1 else torch.cat(biases)
    if rows is not None:
        weight = weight[:rows]
        bias = None if bias is None else bias[:rows]
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    linear.weight = torch.nn.Parameter(weight, requires_grad=False)
    if bias is not None:
        linear.bias = torch.nn.Parameter(bias, requires_grad=False)
    return linear
