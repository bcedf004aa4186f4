"""Attention over the engine's KV cache for one packed forward pass.

The tokens of several sequences sit in one row. `attend` writes each token's key and value into its
sequence's cache slot, then attends: decoding tokens over their slot's valid prefix (one batched call),
prompt tokens causally over their own prompt (and, for a chunk after a prompt's first, over the slot's
cached prefix). The engine's own model code and the transformers adapter (slot_attention) both call it.
"""

from __future__ import annotations

import torch
from torch.nn.functional import scaled_dot_product_attention

from llmapi.engine.forward_batch import ForwardBatch, PrefillSpan


def attend(
    batch: ForwardBatch,
    layer: int,
    query: torch.Tensor,  # [1, heads, tokens, head_dim]
    key: torch.Tensor,  # [1, kv_heads, tokens, head_dim]
    value: torch.Tensor,
    scaling: float | None = None,
) -> torch.Tensor:
    """Store the pass's keys and values in layer `layer`'s cache and attend; returns [1, tokens, heads,
    head_dim] in packed token order."""
    cache_keys, cache_values = batch.cache.keys[layer], batch.cache.values[layer]
    cache_keys[batch.token_slots, :, batch.token_positions] = key[0].transpose(0, 1)
    cache_values[batch.token_slots, :, batch.token_positions] = value[0].transpose(0, 1)
    grouped = key.shape[1] != query.shape[1]

    outputs: list[torch.Tensor] = []
    if batch.num_decode:
        outputs.append(_decode_attention(batch, query, cache_keys, cache_values, scaling))
    for span in batch.prefill_spans:
        outputs.append(
            _prefill_attention(span, query, key, value, cache_keys, cache_values, scaling, grouped)
        )
    return torch.cat(outputs, dim=1) if len(outputs) > 1 else outputs[0]


def _prefill_attention(
    span: PrefillSpan,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    cache_keys: torch.Tensor,
    cache_values: torch.Tensor,
    scaling: float | None,
    grouped: bool,
) -> torch.Tensor:
    """A prompt chunk attending causally to itself and, after the first chunk, to its slot's cached prefix;
    returns [1, length, heads, head_dim]."""
    end = span.start + span.length
    queries = query[:, :, span.start : end]
    if span.mask is None:
        out = scaled_dot_product_attention(
            queries,
            key[:, :, span.start : end],
            value[:, :, span.start : end],
            is_causal=True,
            scale=scaling,
            enable_gqa=grouped,
        )
    else:
        row = slice(span.slot, span.slot + 1)
        known = span.cache_start + span.length
        out = scaled_dot_product_attention(
            queries,
            cache_keys[row, :, :known],
            cache_values[row, :, :known],
            attn_mask=span.mask,
            scale=scaling,
            enable_gqa=grouped,
        )
    return out.transpose(1, 2)


def _decode_attention(
    batch: ForwardBatch,
    query: torch.Tensor,
    cache_keys: torch.Tensor,
    cache_values: torch.Tensor,
    scaling: float | None,
) -> torch.Tensor:
    """One query per decoding sequence, attending over its slot; returns [1, num_decode, heads, head_dim].

    The query heads that share a key/value head are that head's queries ([n, kv_heads, group, dim]): the
    mask is the same for all of them, and the keys are read once instead of repeated for every group.
    """
    _, heads, _, head_dim = query.shape
    kv_heads = cache_keys.shape[1]
    num_decode = batch.num_decode
    queries = query[0, :, :num_decode].transpose(0, 1).reshape(num_decode, kv_heads, -1, head_dim)
    if not batch.decode_rows_in_order:
        # Scatter the queries to their slots so the cache is read as a view, never copied.
        rows = queries.new_zeros((batch.decode_rows, *queries.shape[1:]))
        rows[batch.decode_slots] = queries
        queries = rows
    length = batch.decode_length
    out = scaled_dot_product_attention(
        queries,
        cache_keys[: batch.decode_rows, :, :length],
        cache_values[: batch.decode_rows, :, :length],
        attn_mask=batch.decode_mask,
        scale=scaling,
    )
    if not batch.decode_rows_in_order:
        out = out[batch.decode_slots]
    return out.reshape(1, num_decode, heads, head_dim)
