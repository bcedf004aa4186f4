from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence as TokenIds
from typing import Any, Protocol

from llmapi.engine.errors import PromptTooLongError
from llmapi.engine.grammar_compiler import GrammarCompiler
from llmapi.engine.incremental_detokenizer import TokenDecoder
from llmapi.engine.model_runner import ModelRunner
from llmapi.engine.prefix_cache import PrefixCache
from llmapi.engine.request_output import RequestOutput
from llmapi.engine.sampler import Sampler
from llmapi.engine.sampling_params import SamplingParams
from llmapi.engine.scheduled_batch import PrefixCopy
from llmapi.engine.scheduler import Scheduler
from llmapi.engine.sequence import Sequence
from llmapi.engine.token_texts import TokenTexts
from llmapi.types import ModelCode, Quantization

DEFAULT_MAX_PREFILL_TOKENS = 512
IDLE_CACHE_BYTES = 256 * 2**20  # the KV cache memory cached prefixes may keep while nothing runs


class StepObserver(Protocol):
    """Told about every engine step, from the engine thread; must return quickly and never raise."""

    def on_step(
        self, *, batch_size: int, decode_tokens: int, prefill_tokens: int, seconds: float
    ) -> None: ...


class LLMEngine:
    """Continuous batching over one causal LM. Not thread-safe: one thread drives it (see AsyncEngine).

    With `prefix_caching`, prompts sharing a prefix with a cached one (a system prompt, a chat history, n
    choices) start after it instead of recomputing it. While nothing runs, the KV cache keeps the most
    recent cached prefixes within `idle_cache_bytes`; without prefix caching it is freed.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: TokenDecoder,
        *,
        vocab_size: int,
        eos_token_id: int | None,
        max_batch_size: int,
        max_prefill_tokens: int = DEFAULT_MAX_PREFILL_TOKENS,
        seed: int | None = None,
        quantization: Quantization = "none",
        compile_model: bool = False,
        model_code: ModelCode = "auto",
        prefix_caching: bool = True,
        idle_cache_bytes: int = IDLE_CACHE_BYTES,
        observer: StepObserver | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.eos_token_id = eos_token_id
        self.token_texts = TokenTexts(tokenizer)
        self.model_runner = ModelRunner(
            model,
            vocab_size=vocab_size,
            max_batch_size=max_batch_size,
            quantization=quantization,
            compile_model=compile_model,
            model_code=model_code,
        )
        self.scheduler = Scheduler(
            max_batch_size=max_batch_size,
            max_prefill_tokens=max_prefill_tokens,
            prefix_cache=PrefixCache() if prefix_caching else None,
        )
        self.idle_cache_bytes = idle_cache_bytes
        self.sampler = Sampler(seed)
        self.grammars = GrammarCompiler(tokenizer, vocab_size=vocab_size, eos_token_id=eos_token_id)
        self.observer = observer

    @property
    def max_model_len(self) -> int:
        return self.model_runner.max_model_len

    def add_request(self, request_id: str, prompt_token_ids: TokenIds[int], params: SamplingParams) -> None:
        """Queue a request. Its generation ends where the context ends (finish_reason "length"): max_tokens
        is cut to the room the prompt leaves, and a prompt that leaves none raises PromptTooLongError.
        Token ids in logit_bias or stop_token_ids past the vocabulary raise ValueError; a constraint the
        grammar engine cannot enforce raises ConstraintError (compiled here unless `grammars.prepare` did)."""
        vocab = self.model_runner.vocab_size
        if any(t >= vocab for t, _ in params.logit_bias) or any(t >= vocab for t in params.stop_token_ids):
            raise ValueError(f"token ids in logit_bias and stop_token_ids must be below {vocab}")
        room = self.max_model_len - len(prompt_token_ids)
        if room < 1:
            raise PromptTooLongError(len(prompt_token_ids), self.max_model_len)
        if params.max_tokens > room:
            params = dataclasses.replace(params, max_tokens=room)
        seq = Sequence(
            request_id,
            prompt_token_ids,
            params,
            decoder=self.tokenizer,
            eos_token_id=self.eos_token_id,
            token_texts=self.token_texts,
            grammar=None if params.constraint is None else self.grammars.matcher(params.constraint),
        )
        self.scheduler.add(seq)

    def abort_request(self, request_id: str) -> bool:
        """Stop a request; its slot is free at the next step. False if it was unknown or already done."""
        return self.scheduler.abort(request_id) is not None

    def abort_running(self) -> list[str]:
        """Stop every running request (after a failed step); returns their ids."""
        return [seq.request_id for seq in self.scheduler.abort_running()]

    def has_unfinished(self) -> bool:
        return self.scheduler.has_unfinished()

    def step(self) -> list[RequestOutput]:
        started = time.perf_counter()
        batch = self.scheduler.schedule()
        if batch.empty:
            return []
        self._copy_prefixes(batch.prefix_copies)
        logits = self.model_runner.run(batch)
        sampled = self.sampler.sample(logits, batch.sequences)
        outputs = self.scheduler.postprocess(batch, sampled.token_ids, sampled.logprobs)
        if not self.scheduler.has_unfinished():
            self._shrink_idle_cache()
        if self.observer is not None:
            self.observer.on_step(
                batch_size=len(batch.decode) + len(batch.prefill),
                decode_tokens=len(batch.decode),
                prefill_tokens=batch.num_prefill_tokens,
                seconds=time.perf_counter() - started,
            )
        return outputs

    def _copy_prefixes(self, copies: tuple[PrefixCopy, ...]) -> None:
        for copy in copies:
            self.model_runner.cache.copy_prefix(copy.source, copy.target, copy.length)

    def _shrink_idle_cache(self) -> None:
        """Nothing runs: free the KV cache, or keep the latest cached prefixes within idle_cache_bytes."""
        cache = self.model_runner.cache
        if not self.scheduler.num_cached_prefixes:
            self.model_runner.release_memory()
            return
        slots, length = cache.capacity
        if slots * length * cache.bytes_per_position <= self.idle_cache_bytes:
            return
        kept, longest = self.scheduler.keep_cached_prefixes(self.idle_cache_bytes // cache.bytes_per_position)
        cache.keep(kept, longest)
