from __future__ import annotations

from array import array
from typing import Any

import torch

from llmapi.engine.forward_batch import ForwardBatch, PrefillSpan
from llmapi.engine.kv_cache import KVCache
from llmapi.engine.model_rewrites import conv1d_to_linear, quantize_linears_int4, quantize_linears_int8
from llmapi.engine.models import engine_model_for
from llmapi.engine.scheduled_batch import ScheduledBatch
from llmapi.engine.sequence import Sequence
from llmapi.engine.slot_attention import FORWARD_BATCH_KWARG, SLOT_ATTENTION, register_slot_attention
from llmapi.types import ModelCode, Quantization


class ModelRunner:
    """Owns a causal LM and its KV cache; runs one packed forward pass per engine step.

    Sequences at different positions decode together, and new prompts are prefilled in the same pass.
    Families with the engine's own model code (`llmapi.engine.models`) run on it, unless `model_code` is
    "transformers"; other models run through transformers with their attention switched to the slot
    attention, which keeps the cache (transformers' own cache is never used).
    """

    def __init__(
        self,
        model: Any,
        *,
        vocab_size: int,
        max_batch_size: int,
        quantization: Quantization = "none",
        compile_model: bool = False,
        model_code: ModelCode = "auto",
    ) -> None:
        config = model.config.get_text_config()
        for unsupported in ("sliding_window", "attn_logit_softcapping", "final_logit_softcapping"):
            if getattr(config, unsupported, None):
                raise ValueError(
                    f"models with {unsupported} are not supported by the local engine yet; "
                    "serve this model through a remote engine (backend 'openai')"
                )
        self.model = model
        self._first_slots = list(range(max_batch_size))
        self.vocab_size = min(vocab_size, int(config.vocab_size))
        self.max_model_len = int(config.max_position_embeddings)
        num_heads = int(config.num_attention_heads)
        head_dim = getattr(config, "head_dim", None) or int(config.hidden_size) // num_heads
        self.cache = KVCache(
            num_layers=int(config.num_hidden_layers),
            num_kv_heads=int(getattr(config, "num_key_value_heads", None) or num_heads),
            head_dim=int(head_dim),
            max_slots=max_batch_size,
            max_length=self.max_model_len,
            dtype=next(model.parameters()).dtype,
        )
        self._key_positions = torch.arange(self.max_model_len)
        model.eval()
        self._trim_output_embeddings()
        self.own_model = engine_model_for(model, vocab_size=self.vocab_size) if model_code == "auto" else None
        if self.own_model is not None:
            self.model = model = self.own_model  # the transformers modules are no longer needed
        else:
            self._use_slot_attention()
            conv1d_to_linear(model)
        if quantization == "int8":
            quantize_linears_int8(model)
        elif quantization == "int4":
            quantize_linears_int4(model)
        self._forward: Any = torch.compile(model, dynamic=True) if compile_model else model

    @torch.inference_mode()
    def run(self, batch: ScheduledBatch) -> torch.Tensor:
        """Next-token logits [len(batch.sequences), vocab_size], in batch.sequences order, in the model's
        dtype (the sampler computes in float32)."""
        if batch.empty:
            return torch.empty((0, self.vocab_size))
        token_ids, positions, forward_batch, logit_rows = self._inputs(batch)
        if self.own_model is not None:
            own_logits: torch.Tensor = self._forward(token_ids, positions, forward_batch, logit_rows)
            return own_logits[:, : self.vocab_size]
        output = self._forward(
            input_ids=token_ids.unsqueeze(0),
            position_ids=positions.unsqueeze(0),
            use_cache=False,
            logits_to_keep=logit_rows,
            **{FORWARD_BATCH_KWARG: forward_batch},
        )
        logits: torch.Tensor = output.logits[0, :, : self.vocab_size]
        return logits

    def release_memory(self) -> None:
        """Free the KV cache (call when no sequence is running)."""
        self.cache.release()

    def _use_slot_attention(self) -> None:
        register_slot_attention()
        self.model.set_attn_implementation(SLOT_ATTENTION)
        if self.model.config._attn_implementation != SLOT_ATTENTION:
            raise ValueError(
                f"{type(self.model).__name__} cannot switch its attention implementation, which the local "
                "engine needs; serve this model through a remote engine (backend 'openai')"
            )

    def _trim_output_embeddings(self) -> None:
        """Compute logits only for the tokenizer's ids: the built-in model's head has 50,257 rows for a
        tokenizer of 8,192, and the head is a third of GPT-2 small's weights. The new head shares memory."""
        head = self.model.get_output_embeddings()
        if not isinstance(head, torch.nn.Linear) or head.out_features <= self.vocab_size:
            return
        trimmed = torch.nn.Linear(
            head.in_features, self.vocab_size, bias=head.bias is not None, device="meta"
        )
        trimmed.weight = torch.nn.Parameter(head.weight[: self.vocab_size], requires_grad=False)
        if head.bias is not None:
            trimmed.bias = torch.nn.Parameter(head.bias[: self.vocab_size], requires_grad=False)
        self.model.set_output_embeddings(trimmed)

    def _inputs(self, batch: ScheduledBatch) -> tuple[torch.Tensor, torch.Tensor, ForwardBatch, torch.Tensor]:
        """The packed token ids and positions, the ForwardBatch, and the rows whose logits are wanted: one
        tensor made from Python lists per step (through an array: several times faster than torch.tensor),
        the rest by tensor ops."""
        decode = batch.decode
        num_decode = len(decode)
        token_ids = [seq.last_token_id for seq in decode]
        positions = [seq.num_tokens - 1 for seq in decode]
        slots = [_slot(seq) for seq in decode]
        spans, logit_rows = [], list(range(num_decode))
        for chunk in batch.prefill:
            start, slot = len(token_ids), _slot(chunk.seq)
            token_ids += chunk.token_ids
            positions += range(chunk.start, chunk.start + chunk.length)
            slots += [slot] * chunk.length
            spans.append(
                PrefillSpan.build(start=start, length=chunk.length, slot=slot, cache_start=chunk.start)
            )
            if chunk.completes_prompt:
                logit_rows.append(start + chunk.length - 1)
        # Room for whole prompts at once: a prompt read in chunks then grows (copies) the cache once.
        prompt_end = max((chunk.seq.num_prompt_tokens for chunk in batch.prefill), default=0)
        self.cache.ensure(max(slots) + 1, max(max(positions) + 1, prompt_end))
        tokens = len(token_ids)
        packed = torch.frombuffer(array("q", token_ids + positions + slots + logit_rows), dtype=torch.long)
        token_slots, token_positions = packed[2 * tokens : 3 * tokens], packed[tokens : 2 * tokens]
        decode_slots, decode_positions = token_slots[:num_decode], token_positions[:num_decode]
        decode_rows = max(slots[:num_decode], default=-1) + 1
        in_order = slots[:num_decode] == self._first_slots[:num_decode]
        lengths = decode_positions + 1
        if not in_order:
            # Rows of slots not decoding attend to position 0: something harmless, not nothing.
            lengths = torch.ones(decode_rows, dtype=torch.long).index_copy_(0, decode_slots, lengths)
        decode_length = max(positions[:num_decode], default=-1) + 1
        keys = self._key_positions[:decode_length]
        forward_batch = ForwardBatch(
            cache=self.cache,
            token_slots=token_slots,
            token_positions=token_positions,
            num_decode=num_decode,
            decode_slots=decode_slots,
            decode_rows=decode_rows,
            decode_rows_in_order=in_order,
            decode_mask=(keys < lengths.unsqueeze(1)).view(decode_rows, 1, 1, decode_length),
            prefill_spans=tuple(spans),
        )
        return packed[:tokens], token_positions, forward_batch, packed[3 * tokens :]


def _slot(seq: Sequence) -> int:
    if seq.slot is None:
        raise RuntimeError(f"sequence {seq.request_id} is scheduled without a KV cache slot")
    return seq.slot
