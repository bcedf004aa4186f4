from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Sequence as Items

from llmapi.engine.prefix_cache import PrefixCache, PrefixMatch, common_length
from llmapi.engine.request_output import RequestOutput
from llmapi.engine.scheduled_batch import PrefillChunk, PrefixCopy, ScheduledBatch
from llmapi.engine.sequence import Sequence, SequenceStatus
from llmapi.engine.token_logprob import SampledLogprobs


class Scheduler:
    """A waiting queue and a running batch of at most `max_batch_size` sequences, one KV cache slot each.

    Every step decodes all running sequences whose prompt is in the cache, and prefills at most
    `max_prefill_tokens` prompt tokens: first the rest of prompts already started, then new sequences
    (first come, first served) while slots are free. A prompt longer than the budget is prefilled in chunks
    over several steps, so running sequences keep decoding while it is read.

    With a `prefix_cache`, a finished sequence's slot keeps its keys and values until the slot is needed
    (slots are taken lowest first, so a prefix survives while fewer sequences run). A new sequence starts
    after the longest prefix of its prompt that some slot holds: it takes that slot when it is free, or
    the batch copies the prefix into its own slot. A sequence whose prompt shares more with a prompt still
    being prefilled waits for it (n choices of one prompt cost one prefill).
    """

    def __init__(
        self, *, max_batch_size: int, max_prefill_tokens: int = 512, prefix_cache: PrefixCache | None = None
    ) -> None:
        if max_batch_size < 1 or max_prefill_tokens < 1:
            raise ValueError("max_batch_size and max_prefill_tokens must be at least 1")
        self.max_batch_size = max_batch_size
        self.max_prefill_tokens = max_prefill_tokens
        self.prefix_cache = prefix_cache
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self._free_slots = list(range(max_batch_size))  # empty slots (a heap)
        self._cached_slots: OrderedDict[int, None] = (
            OrderedDict()
        )  # free slots holding a prefix, oldest first
        self.num_cached_prompt_tokens = 0  # prompt tokens taken from the cache instead of prefilled

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
        copies: list[PrefixCopy] = []
        deferred: list[Sequence] = []
        while budget and self.waiting and (self._free_slots or self._cached_slots):
            seq = self.waiting.popleft()
            match = self._cached_prefix(seq)
            if self._shares_more_with_a_prefilling_prompt(seq, match):
                deferred.append(seq)
                continue
            copy = self._start(seq, match)
            if copy is not None:
                copies.append(copy)
            self.running.append(seq)
            prefill.append(self._chunk(seq, budget))
            budget -= prefill[-1].length
        self.waiting.extendleft(reversed(deferred))
        return ScheduledBatch(decode=decode, prefill=tuple(prefill), prefix_copies=tuple(copies))

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
            self._release(seq, keep_cache=False)
        return aborted

    @property
    def num_cached_prefixes(self) -> int:
        return len(self._cached_slots)

    def keep_cached_prefixes(self, max_positions: int) -> tuple[list[int], int]:
        """While nothing runs: keep the most recently used cached prefixes that fit `max_positions` cache
        positions (as many slots as kept, each as long as the longest), renumbered as slots 0, 1, ... (least
        recently used first), and forget the rest. Returns the kept slots' old numbers in their new order and
        the longest kept prefix, for the KV cache to move its rows alike."""
        if self.running:
            raise RuntimeError("cached prefixes can only be renumbered while no sequence runs")
        kept: list[int] = []
        longest = 0
        for slot in reversed(self._cached_slots):
            length = len(self.prefix_cache.tokens(slot)) if self.prefix_cache is not None else 0
            if (len(kept) + 1) * max(longest, length) > max_positions:
                break
            kept.insert(0, slot)
            longest = max(longest, length)
        if self.prefix_cache is not None:
            self.prefix_cache.renumber({old: new for new, old in enumerate(kept)})
        self._cached_slots = OrderedDict.fromkeys(range(len(kept)))
        self._free_slots = list(range(len(kept), self.max_batch_size))
        return kept, longest

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
            self._remember(chunk.seq)
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

    def _cached_prefix(self, seq: Sequence) -> PrefixMatch | None:
        """The longest cached prefix of the prompt but its last token (which must run to give logits); a
        free slot holding it is preferred, as it is taken without a copy."""
        if self.prefix_cache is None:
            return None
        matches = self.prefix_cache.find(seq.prompt_token_ids[:-1])
        if not matches:
            return None
        longest = [m for m in matches if m.length == matches[0].length]
        return next((m for m in longest if m.slot in self._cached_slots), longest[0])

    def _shares_more_with_a_prefilling_prompt(self, seq: Sequence, match: PrefixMatch | None) -> bool:
        """Whether a prompt being prefilled will hold a longer prefix of this one than the cache does now
        (at least a block): the sequence then waits for it rather than compute the same keys again."""
        if self.prefix_cache is None:
            return False
        worth = max(self.prefix_cache.block_size, 1 + (0 if match is None else match.length))
        prompt = seq.prompt_token_ids[:-1]
        return any(
            not other.is_prefilled and common_length(other.prompt_token_ids, prompt) >= worth
            for other in self.running
        )

    def _start(self, seq: Sequence, match: PrefixMatch | None) -> PrefixCopy | None:
        """Give the sequence a slot and its cached prefix; returns the copy that brings the prefix into its
        slot, if one is needed."""
        if match is not None and match.slot in self._cached_slots:
            del self._cached_slots[match.slot]
            slot, copy = match.slot, None
        else:
            slot = self._take_slot()
            copy = None if match is None else PrefixCopy(match.slot, slot, match.length)
        seq.mark_scheduled(slot)
        if match is not None and self.prefix_cache is not None:
            seq.num_prefilled = match.length
            self.num_cached_prompt_tokens += match.length
            self.prefix_cache.store(slot, seq.prompt_token_ids[: match.length])
        return copy

    def _take_slot(self) -> int:
        """The lowest free slot, empty or not (a cached prefix there is forgotten): the slots in use stay
        as few as the sequences running at once, since the cache holds, and decode attention reads, every
        row up to the highest slot in use."""
        slot = min((*self._free_slots[:1], *self._cached_slots))  # the heap's first is its lowest
        if slot in self._cached_slots:
            del self._cached_slots[slot]
            if self.prefix_cache is not None:
                self.prefix_cache.forget(slot)
        else:
            heapq.heappop(self._free_slots)
        return slot

    def _remember(self, seq: Sequence) -> None:
        if self.prefix_cache is not None and seq.slot is not None:
            self.prefix_cache.store(seq.slot, seq.cached_token_ids)

    def _release(self, seq: Sequence, *, keep_cache: bool = True) -> None:
        """Take the sequence out of the batch; its slot keeps what it holds as a cached prefix (from the
        last completed step) where that is at least one block, else it is empty again."""
        self.running.remove(seq)
        seq.status = SequenceStatus.FINISHED
        slot, seq.slot = seq.slot, None
        if slot is None:
            return
        cache = self.prefix_cache
        if cache is not None and keep_cache and len(seq.cached_token_ids) >= cache.block_size:
            cache.store(slot, seq.cached_token_ids)
            self._cached_slots[slot] = None
            return
        if cache is not None:
            cache.forget(slot)
        heapq.heappush(self._free_slots, slot)
