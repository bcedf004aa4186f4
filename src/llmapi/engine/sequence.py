from __future__ import annotations

import logging
import time
from collections.abc import Sequence as TokenIds
from enum import Enum, auto

import torch

from llmapi.engine.grammar_matcher import GrammarMatcher
from llmapi.engine.incremental_detokenizer import IncrementalDetokenizer, TokenDecoder
from llmapi.engine.request_output import RequestOutput
from llmapi.engine.sampling_params import SamplingParams
from llmapi.engine.token_logprob import SampledLogprobs, TokenLogprob, TopLogprob
from llmapi.engine.token_texts import TokenTexts
from llmapi.types import FinishReason

logger = logging.getLogger(__name__)


class SequenceStatus(Enum):
    WAITING = auto()
    RUNNING = auto()
    FINISHED = auto()


class Sequence:
    """One request as the engine sees it: its tokens, how to sample it, and the text it has streamed."""

    def __init__(
        self,
        request_id: str,
        prompt_token_ids: TokenIds[int],
        params: SamplingParams,
        *,
        decoder: TokenDecoder,
        eos_token_id: int | None,
        token_texts: TokenTexts | None = None,
        grammar: GrammarMatcher | None = None,
    ) -> None:
        if not prompt_token_ids:
            raise ValueError("a sequence needs at least one prompt token")
        self.request_id = request_id
        self.prompt_token_ids = list(prompt_token_ids)
        self.output_token_ids: list[int] = []
        self.params = params
        self.status = SequenceStatus.WAITING
        self.slot: int | None = None
        self.num_prefilled = 0  # prompt tokens already in the KV cache
        self.arrival_time = time.monotonic()
        self.queue_seconds: float | None = None  # from arrival to first scheduled, once it is
        self.finish_reason: FinishReason | None = None
        self.generator: torch.Generator | None = None
        if params.seed is not None:
            self.generator = torch.Generator().manual_seed(params.seed)
        self._eos_token_id = eos_token_id
        self.grammar = grammar  # where the output is in params.constraint's grammar
        self._detokenizer = IncrementalDetokenizer(decoder, self.prompt_token_ids)
        self._text = ""  # all text produced so far, cut at a stop string
        self._emitted = 0  # how much of _text has been streamed
        self._token_texts = token_texts or TokenTexts(decoder)
        # Logprobs of tokens whose text is not streamed yet, with where their text starts in _text.
        self._pending_logprobs: list[TokenLogprob] = []

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def num_tokens(self) -> int:
        return len(self.prompt_token_ids) + len(self.output_token_ids)

    @property
    def last_token_id(self) -> int:
        return self.output_token_ids[-1] if self.output_token_ids else self.prompt_token_ids[-1]

    @property
    def is_prefilled(self) -> bool:
        return self.num_prefilled >= len(self.prompt_token_ids)

    @property
    def cached_token_ids(self) -> list[int]:
        """The tokens whose keys and values are in the slot after the last completed step: the prompt read
        so far, then the output but its last token (which the next decode step feeds)."""
        if not self.is_prefilled:
            return self.prompt_token_ids[: self.num_prefilled]
        return (self.prompt_token_ids + self.output_token_ids)[:-1]

    @property
    def is_finished(self) -> bool:
        return self.status is SequenceStatus.FINISHED

    @property
    def text(self) -> str:
        """The completion text so far (including any tail still held back)."""
        return self._text

    def append_token(self, token_id: int, logprobs: SampledLogprobs | None = None) -> RequestOutput:
        """Record a sampled token; return the text it releases (with the logprobs of the tokens that made
        it) and, if it ends the sequence, why. An end token (eos, a stop token id) has no text: its
        logprob is not reported."""
        self.output_token_ids.append(token_id)
        complete = self._advance_grammar(token_id)
        finish: FinishReason | None = None
        if self._ends(token_id):
            finish = "stop"
        else:
            if logprobs is not None:
                self._pending_logprobs.append(self._token_logprob(token_id, logprobs))
            self._text += self._detokenizer.push(token_id)
            if len(self.output_token_ids) >= self.params.max_tokens:
                finish = "length"
        if complete:
            finish = "stop"
        if finish is not None:
            self._text += self._detokenizer.flush()
        cut = self._cut_at_stop_string()
        if cut:
            finish = "stop"
        if finish is not None:
            self.finish(finish)
            release = len(self._text)
        else:
            release = len(self._text) - self._held_back()
        delta = self._text[self._emitted : release]
        self._emitted = max(self._emitted, release)
        return RequestOutput(
            request_id=self.request_id,
            text=delta,
            token_ids=(token_id,),
            logprobs=self._released_logprobs(release, everything=finish is not None and not cut),
            prompt_tokens=self.num_prompt_tokens,
            completion_tokens=len(self.output_token_ids),
            finish_reason=self.finish_reason,
            queue_seconds=self.queue_seconds if len(self.output_token_ids) == 1 else None,
        )

    def mark_scheduled(self, slot: int) -> None:
        """The scheduler gave this sequence a KV cache slot: it runs from the next step on."""
        self.slot = slot
        self.status = SequenceStatus.RUNNING
        self.queue_seconds = time.monotonic() - self.arrival_time

    def finish(self, reason: FinishReason) -> None:
        self.status = SequenceStatus.FINISHED
        self.finish_reason = reason

    def _advance_grammar(self, token_id: int) -> bool:
        """Feed the token to the grammar; True when the output is complete (nothing more may follow)."""
        if self.grammar is None:
            return False
        if not self.grammar.accept(token_id):  # the mask allows only what it accepts: a bug
            logger.error(
                "request %s: its grammar refused token %d: %s", self.request_id, token_id, self.grammar.error
            )
        return self.grammar.is_finished

    def _ends(self, token_id: int) -> bool:
        if token_id in self.params.stop_token_ids:
            return True
        return token_id == self._eos_token_id and not self.params.ignore_eos

    def _token_logprob(self, token_id: int, sampled: SampledLogprobs) -> TokenLogprob:
        text, raw = self._token_texts(token_id)
        top = []
        for top_id, top_logprob in zip(sampled.top_ids, sampled.top_logprobs, strict=True):
            top_text, top_raw = self._token_texts(top_id)
            top.append(TopLogprob(top_id, top_text, top_raw, top_logprob))
        return TokenLogprob(token_id, text, raw, sampled.logprob, offset=len(self._text), top=tuple(top))

    def _released_logprobs(self, release: int, *, everything: bool) -> tuple[TokenLogprob, ...]:
        """The logprobs of the tokens whose text starts in the text released so far (`everything`: at an
        end that cut nothing, all the rest). Where a stop string cut the text, a token whose text starts
        before the cut is reported whole; one that starts in the stop string or after it is not."""
        if everything:
            released, self._pending_logprobs = self._pending_logprobs, []
            return tuple(released)
        count = sum(1 for lp in self._pending_logprobs if lp.offset < release)
        released, self._pending_logprobs = self._pending_logprobs[:count], self._pending_logprobs[count:]
        return tuple(released)

    def _cut_at_stop_string(self) -> bool:
        """Truncate the text before the first stop string; True if one was found.

        A stop string can only start in the text not yet streamed: anything that could begin one is held back.
        """
        hits = [i for stop in self.params.stop if (i := self._text.find(stop, self._emitted)) >= 0]
        if not hits:
            return False
        self._text = self._text[: min(hits)]
        return True

    def _held_back(self) -> int:
        """Length of the longest unstreamed tail that could be the start of a stop string."""
        pending = len(self._text) - self._emitted
        longest = 0
        for stop in self.params.stop:
            for size in range(min(len(stop) - 1, pending), longest, -1):
                if self._text.endswith(stop[:size]):
                    longest = size
                    break
        return longest
