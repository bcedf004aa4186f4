"""Text generation in this process: a Hugging Face causal LM behind the continuous-batching engine."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import torch

from llmapi.backends.base import ChatPrompt, GenerationChunk, ModelCard, Prompt
from llmapi.backends.local import loader
from llmapi.backends.local.builtin import BUILTIN_MODELS, BUILTIN_NOTICE
from llmapi.backends.local.chat_template import render_chat
from llmapi.backends.local.end_tokens import end_token_ids, special_token_ids
from llmapi.backends.local.token_floor import TokenFloor
from llmapi.config import ConfigError, EngineSettings
from llmapi.engine.async_engine import AsyncEngine
from llmapi.engine.engine_process import EngineProcess
from llmapi.engine.engine_stats import EngineStats
from llmapi.engine.errors import (
    ConstraintError,
    EngineOverloadedError,
    EngineStoppedError,
    PromptTooLongError,
)
from llmapi.engine.llm_engine import LLMEngine, StepObserver
from llmapi.engine.sampling_params import SamplingParams
from llmapi.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    ServerOverloadedError,
    ServiceUnavailableError,
    UnsupportedError,
)
from llmapi.model_specs import ModelSpec
from llmapi.observability.engine_metrics import ModelMetrics
from llmapi.types import Feature

logger = logging.getLogger(__name__)

LoadCausalLM = Callable[[str, torch.dtype], tuple[Any, Any]]
In = TypeVar("In")
Out = TypeVar("Out")

FEATURES: frozenset[Feature] = frozenset({"logprobs", "logit_bias", "tools", "structured output"})
"""What a local text model does beyond reading and writing text (ModelCard.features)."""

OFF_LOOP_CHARS = 2048
"""A prompt longer than this is rendered and tokenized in a worker thread (the tokenizer lets go of the
interpreter lock while it works): 2,048 characters take it about 1 ms, 700,000 about a second."""


class LocalTextBackend:
    """A TextGenerationBackend running a causal LM on this machine's CPU (or whatever torch uses)."""

    def __init__(
        self,
        spec: ModelSpec,
        engine_settings: EngineSettings,
        *,
        load: LoadCausalLM | None = None,
        observer: StepObserver | None = None,
        metrics: ModelMetrics | None = None,
    ) -> None:
        if spec.source is None:
            raise ConfigError(f"model '{spec.id}' needs a source: a Hugging Face id, a directory or builtin:")
        self._spec = spec
        self._source = spec.source
        self._settings = engine_settings
        self._load = load or loader.load_causal_lm
        self._metrics = metrics
        self._observer = observer or metrics
        self._created = int(time.time())
        self._context_length: int | None = None
        self._family: str | None = None
        self._parameters: int | None = None
        self._tokenizer: Any = None
        self._token_floor = TokenFloor(None)
        self._engine: AsyncEngine | EngineProcess | None = None
        self._end_token_ids: tuple[int, ...] = ()

    @property
    def card(self) -> ModelCard:
        return ModelCard(
            id=self._spec.id,
            task="text-generation",
            owned_by="llmapi",
            created=self._created,
            context_length=self._context_length,
            description=self._spec.description,
            family=self._family,
            parameters=self._parameters,
            features=FEATURES,
        )

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise ServiceUnavailableError(f"The model '{self._spec.id}' is still loading; retry in a moment.")
        return self._tokenizer

    async def start(self) -> None:
        if self._engine is not None:
            return
        if self._source.removeprefix("builtin:") in BUILTIN_MODELS:
            logger.warning(BUILTIN_NOTICE)
        build = functools.partial(_build_engine, self._source, self._settings, self._load)
        engine: AsyncEngine | EngineProcess
        if self._settings.process:
            engine = EngineProcess(
                build,
                max_batch_size=self._settings.max_batch_size,
                max_waiting=self._settings.max_waiting,
                observer=self._observer,
            )
            facts: ModelFacts = await engine.start()
        else:
            llm_engine, facts = await asyncio.to_thread(build, self._observer)
            engine = AsyncEngine(llm_engine, max_waiting=self._settings.max_waiting)
            engine.start()
        self._token_floor = await asyncio.to_thread(TokenFloor.of, facts.tokenizer)
        self._tokenizer = facts.tokenizer
        self._family, self._parameters = facts.family, facts.parameters
        self._end_token_ids = facts.end_token_ids
        self._context_length = engine.max_model_len
        self._engine = engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.close()
            self._engine = None

    def stats(self) -> EngineStats:
        if self._engine is None:
            return EngineStats(running=0, waiting=0)
        return self._engine.stats()

    async def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncIterator[GenerationChunk]:
        if self._engine is None or self._context_length is None:
            raise ServiceUnavailableError(f"The model '{self._spec.id}' is not running; retry in a moment.")
        param = _param(prompt)
        params = self._with_end_tokens(params)
        token_ids = await self._tokenize(prompt, self._context_length)
        if len(token_ids) >= self._context_length:  # refused here, before it waits in the engine's queue
            raise _context_length_exceeded(len(token_ids), self._context_length, param)
        # The engine ends the generation where the context ends ("length"): max_tokens needs no clamping here.
        # aclosing: when our consumer stops early, the engine hears of it now, not when garbage is collected.
        timer = self._metrics.request_timer() if self._metrics is not None else None
        try:
            with _told_to_clients(param):
                async with contextlib.aclosing(
                    self._engine.generate(token_ids, params, uuid.uuid4().hex)
                ) as outputs:
                    async for output in outputs:
                        if timer is not None:
                            timer.on_output(output)
                        if output.text or output.logprobs or output.finished:
                            yield GenerationChunk(
                                text=output.text,
                                finish_reason=output.finish_reason,
                                prompt_tokens=output.prompt_tokens,
                                completion_tokens=output.completion_tokens,
                                logprobs=output.logprobs,
                            )
        finally:
            if timer is not None:
                timer.close()

    def _with_end_tokens(self, params: SamplingParams) -> SamplingParams:
        """The request's parameters with the model's end-of-turn tokens (unless ignore_eos) and the stop
        strings that are special tokens as stop token ids; logit_bias ids checked against the vocabulary."""
        vocabulary = self._engine.vocab_size if self._engine is not None else 0
        outside = [t for t, _ in params.logit_bias if t >= vocabulary]
        if outside:
            raise InvalidRequestError(
                f"logit_bias names token {outside[0]}, but this model's token ids are 0 to {vocabulary - 1}.",
                param="logit_bias",
            )
        stops = special_token_ids(self.tokenizer, params.stop)
        if not params.ignore_eos:
            stops += self._end_token_ids
        if not stops:
            return params
        return replace(params, stop_token_ids=tuple(dict.fromkeys((*params.stop_token_ids, *stops))))

    async def _tokenize(self, prompt: Prompt, context_length: int) -> list[int]:
        """The prompt's token ids. A long prompt is rendered and encoded off the event loop; one that cannot
        fit the context whatever its tokens is refused before it is encoded."""
        if isinstance(prompt, ChatPrompt):
            chars = sum(len(m.content) + sum(len(c.arguments) for c in m.tool_calls) for m in prompt.messages)
            text = await _off_loop_past(OFF_LOOP_CHARS, chars, self._render_chat, prompt)
        elif prompt.token_ids is not None:
            return self._checked_token_ids(prompt.token_ids, context_length)
        else:
            text = prompt.text or ""
        fewest = self._token_floor.tokens_at_least(text)
        if fewest >= context_length:
            raise _context_length_exceeded(fewest, context_length, _param(prompt), at_least=True)
        token_ids = await _off_loop_past(OFF_LOOP_CHARS, len(text), self._encode, text)
        return token_ids or [self._start_token()]

    def _encode(self, text: str) -> list[int]:
        return [int(t) for t in self.tokenizer.encode(text, add_special_tokens=False)]

    def _start_token(self) -> int:
        """What an empty prompt starts from."""
        tokenizer = self.tokenizer
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        return int(start)

    def _checked_token_ids(self, token_ids: tuple[int, ...], context_length: int) -> list[int]:
        if len(token_ids) >= context_length:  # before the ids are looked at one by one
            raise _context_length_exceeded(len(token_ids), context_length, "prompt")
        vocabulary = len(self.tokenizer)
        if any(not 0 <= t < vocabulary for t in token_ids):
            raise InvalidRequestError(
                f"prompt token ids must be between 0 and {vocabulary - 1} for this model.", param="prompt"
            )
        return list(token_ids) or [self._start_token()]

    def _render_chat(self, prompt: ChatPrompt) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise InvalidRequestError(
                f"The model '{self._spec.id}' has no chat template; use /v1/completions with a text prompt.",
                param="messages",
            )
        return render_chat(self.tokenizer, prompt)


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What the backend needs of a loaded model beside its engine (picklable: it leaves an engine process)."""

    tokenizer: Any
    family: str | None
    parameters: int
    end_token_ids: tuple[int, ...]


def _build_engine(
    source: str, settings: EngineSettings, load: LoadCausalLM, observer: StepObserver | None
) -> tuple[LLMEngine, ModelFacts]:
    """Load the model and wrap it in an engine (int8 quantization takes a while: off the event loop, or in
    the engine process)."""
    loader.configure_threads(settings.threads)
    loaded: tuple[Any, Any] = load(source, loader.pick_dtype(settings.dtype))
    model, tokenizer = loaded
    model = loader.settle_dtype(model, settings.dtype)
    family, parameters = loader.describe(model)
    engine = LLMEngine(
        model,
        tokenizer,
        vocab_size=len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        max_batch_size=settings.max_batch_size,
        max_prefill_tokens=settings.max_prefill_tokens,
        quantization=settings.quantization,
        compile_model=settings.compile,
        model_code=settings.model_code,
        prefix_caching=settings.prefix_caching,
        observer=observer,
    )
    return engine, ModelFacts(tokenizer, family, parameters, end_token_ids(model, tokenizer))


def _param(prompt: Prompt) -> str:
    return "messages" if isinstance(prompt, ChatPrompt) else "prompt"


@contextlib.contextmanager
def _told_to_clients(param: str) -> Iterator[None]:
    """The one mapping of the engine's refusals to what clients are told (HTTP status, code, message)."""
    try:
        yield
    except ConstraintError as exc:
        raise UnsupportedError(f"This model cannot enforce the requested output format: {exc}") from exc
    except EngineOverloadedError as exc:
        raise ServerOverloadedError(
            f"The model is busy: {exc.max_waiting} requests are already waiting. Retry shortly."
        ) from exc
    except EngineStoppedError as exc:
        if exc.shutting_down:
            raise ServiceUnavailableError("The model is shutting down; retry on another replica.") from exc
        raise ServiceUnavailableError("The model is not running; retry in a moment.") from exc
    except PromptTooLongError as exc:
        raise _context_length_exceeded(exc.prompt_tokens, exc.max_model_len, param) from exc


async def _off_loop_past(threshold: int, size: int, work: Callable[[In], Out], argument: In) -> Out:
    """`work(argument)`, in a worker thread when `size` is past `threshold` (a thread costs about 0.1 ms)."""
    if size > threshold:
        return await asyncio.to_thread(work, argument)
    return work(argument)


def _context_length_exceeded(
    prompt_tokens: int, context_length: int, param: str, *, at_least: bool = False
) -> ContextLengthExceededError:
    has = f"at least {prompt_tokens}" if at_least else str(prompt_tokens)
    return ContextLengthExceededError(
        f"This model's maximum context length is {context_length} tokens, but the {param} has "
        f"{has} tokens, leaving no room to generate. Shorten the {param}.",
        param=param,
    )
