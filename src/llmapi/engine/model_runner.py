from __future__ import annotations

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
        token_ids, positions, slots = self._pack(batch)
        forward_batch = self._forward_batch(batch, positions, slots)
        last_tokens = list(range(len(batch.decode)))
        last_tokens += [
            s.start + s.length - 1
            for s, c in zip(forward_batch.prefill_spans, batch.prefill, strict=True)
            if c.completes_prompt
        ]
        if self.own_model is not None:
            own_logits: torch.Tensor = self._forward(
                torch.tensor(token_ids),
                torch.tensor(positions),
                forward_batch,
                torch.tensor(last_tokens, dtype=torch.long),
            )
            return own_logits[:, : self.vocab_size]
        output = self._forward(
            input_ids=torch.tensor([token_ids]),
            position_ids=torch.tensor([positions]),
            use_cache=False,
            logits_to_keep=torch.tensor(last_tokens, dtype=torch.long),
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

    @staticmethod
    def _pack(batch: ScheduledBatch) -> tuple[list[int], list[int], list[int]]:
        token_ids, positions, slots = [], [], []
        for seq in batch.decode:
            token_ids.append(seq.last_token_id)
            positions.append(seq.num_tokens - 1)
            slots.append(_slot(seq))
        for chunk in batch.prefill:
            token_ids.extend(chunk.token_ids)
            positions.extend(range(chunk.start, chunk.start + chunk.length))
            slots.extend([_slot(chunk.seq)] * chunk.length)
        return token_ids, positions, slots

    def _forward_batch(self, batch: ScheduledBatch, positions: list[int], slots: list[int]) -> ForwardBatch:
        num_decode = len(batch.decode)
        decode_slots = slots[:num_decode]
        decode_rows = max(decode_slots, default=-1) + 1
        decode_length = max(positions[:num_decode], default=-1) + 1
        # Room for whole prompts at once: a prompt read in chunks then grows (copies) the cache once.
        prompt_end = max((chunk.seq.num_prompt_tokens for chunk in batch.prefill), default=0)
        self.cache.ensure(max(slots) + 1, max(max(positions) + 1, prompt_end))
        mask = torch.zeros((decode_rows, 1, 1, decode_length), dtype=torch.bool)
        if num_decode:
            mask[:, :, :, 0] = True  # rows of slots not decoding attend to something harmless, not nothing
            lengths = torch.tensor(positions[:num_decode]) + 1
            mask[decode_slots, 0, 0, :] = torch.arange(decode_length).unsqueeze(0) < lengths.unsqueeze(1)
        spans, start = [], num_decode
        for chunk in batch.prefill:
            spans.append(
                PrefillSpan.build(
                    start=start, length=chunk.length, slot=_slot(chunk.seq), cache_start=chunk.start
                )
            )
            start += chunk.length
        return ForwardBatch(
            cache=self.cache,
            token_slots=torch.tensor(slots),
            token_positions=torch.tensor(positions),
            num_decode=num_decode,
            decode_slots=torch.tensor(decode_slots, dtype=torch.long),
            decode_rows=decode_rows,
            decode_rows_in_order=decode_slots == list(range(num_decode)),
            decode_mask=mask,
            prefill_spans=tuple(spans),
        )


def _slot(seq: Sequence) -> int:
    if seq.slot is None:
        raise RuntimeError(f"sequence {seq.request_id} is scheduled without a KV cache slot")
    return seq.slot
