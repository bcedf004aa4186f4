from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence as Items

from llmapi.engine.request_output import RequestOutput
from llmapi.engine.scheduled_batch import PrefillChunk, ScheduledBatch
from llmapi.engine.sequence import Sequence, SequenceStatus
from llmapi.engine.token_logprob import SampledLogprobs


class Scheduler:
    """A waiting queue and a running batch of at most `max_batch_size` sequences, one KV cache slot each.

    Every step decodes all running sequences whose prompt is in the cache, and prefills at most
    `max_prefill_tokens` prompt tokens: first the rest of prompts already started, then new sequences
    (first come, first served) while slots are free. A prompt longer than the budget is prefilled in chunks
    over several steps, so running sequences keep decoding while it is read.
    """

    def __init__(self, *, max_batch_size: int, max_prefill_tokens: int = 512) -> None:
        if max_batch_size < 1 or max_prefill_tokens < 1:
            raise ValueError("max_batch_size and max_prefill_tokens must be at least 1")
        self.max_batch_size = max_batch_size
        self.max_prefill_tokens = max_prefill_tokens
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self._free_slots = list(range(max_batch_size))

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def add(self, seq: Sequence) -> None:
        if seq.status is not SequenceStatus.WAITING:
            raise ValueError(f"sequence {seq.request_id} was already scheduled")
        self.waiting.append(seq)

    def schedule(self) -> ScheduledBatch:
        decode = tuple(seq for seq in self.running if seq.is_prefilled)
        budget = self.max_prefill_tokens
        prefill: list[PrefillChunk] = []
        for seq in self.running:
            if budget and not seq.is_prefilled:
                prefill.append(self._chunk(seq, budget))
                budget -= prefill[-1].length
        while budget and self.waiting and self._free_slots:
            seq = self.waiting.popleft()
            seq.mark_scheduled(heapq.heappop(self._free_slots))
            self.running.append(seq)
            prefill.append(self._chunk(seq, budget))
            budget -= prefill[-1].length
        return ScheduledBatch(decode=decode, prefill=tuple(prefill))

    def abort(self, request_id: str) -> Sequence | None:
        """Drop a request wherever it is; its slot is free for the next step. Returns it if it was known."""
        for seq in self.waiting:
            if seq.request_id == request_id:
                self.waiting.remove(seq)
                seq.status = SequenceStatus.FINISHED
                return seq
        for seq in self.running:
            if seq.request_id == request_id:
                self._release(seq)
                return seq
        return None

    def abort_running(self) -> list[Sequence]:
        """Drop every running sequence (after a failed step, their cache state is unknown)."""
        aborted = list(self.running)
        for seq in aborted:
            self._release(seq)
        return aborted

    def postprocess(
        self,
        batch: ScheduledBatch,
        token_ids: Items[int],
        logprobs: Items[SampledLogprobs | None] | None = None,
    ) -> list[RequestOutput]:
        """Count the prefilled chunks, then append each sampled sequence's new token (with its logprobs,
        where it asked); finished sequences leave the batch and free their slot."""
        for chunk in batch.prefill:
            chunk.seq.num_prefilled = chunk.start + chunk.length
        seqs = batch.sequences
        if len(seqs) != len(token_ids):
            raise ValueError(f"{len(seqs)} sequences but {len(token_ids)} sampled tokens")
        if logprobs is None:
            logprobs = [None] * len(seqs)
        outputs = []
        for seq, token_id, token_logprobs in zip(seqs, token_ids, logprobs, strict=True):
            output = seq.append_token(token_id, token_logprobs)
            if seq.is_finished:
                self._release(seq)
            outputs.append(output)
        return outputs

    @staticmethod
    def _chunk(seq: Sequence, budget: int) -> PrefillChunk:
        length = min(budget, seq.num_prompt_tokens - seq.num_prefilled)
        return PrefillChunk(seq, seq.num_prefilled, length)

    def _release(self, seq: Sequence) -> None:
        self.running.remove(seq)
        seq.status = SequenceStatus.FINISHED
        if seq.slot is not None:
            heapq.heappush(self._free_slots, seq.slot)
            seq.slot = None
