"""One inference request through the gateway, in the order it goes: the model that serves it, admission
against the caller's limits, the response cache. What it grants is kept in the request's context, where the
response's headers and its settlement read it; the service then gets a handle that meters its work.

A new inference endpoint needs a protocol model, a service function taking one of these handles, and a thin
route; nothing here changes unless it is a new kind of model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from llmapi.auth.principal import Principal
from llmapi.backends.base import Backend, TextGenerationBackend
from llmapi.backends.registry import ModelRegistry
from llmapi.errors import UnsupportedError
from llmapi.protocol.chat import ChatCompletionRequest
from llmapi.protocol.completions import CompletionRequest
from llmapi.protocol.embeddings import EmbeddingRequest
from llmapi.protocol.generate import GenerateTextRequest
from llmapi.protocol.sentiment import SentimentRequest
from llmapi.services.admission import Gatekeeper
from llmapi.services.embeddings import Embedder, require_text_input
from llmapi.services.forwarding import Forwarding
from llmapi.services.metering import Meter
from llmapi.services.request_context import RequestContext
from llmapi.services.response_cache import Kind, ResponseCache
from llmapi.services.response_format import response_constraint
from llmapi.services.sentiment import Analyzer
from llmapi.services.text_jobs import Generation
from llmapi.services.tool_choice import tool_plan
from llmapi.services.tool_grammar import forced_calls

TextRequest = ChatCompletionRequest | CompletionRequest | GenerateTextRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class Inference:
    context: RequestContext
    principal: Principal
    registry: ModelRegistry
    gatekeeper: Gatekeeper
    response_cache: ResponseCache
    default_max_tokens: int
    cache_control: str | None = None

    async def generation(
        self, kind: Literal["chat", "completions"], request: ChatCompletionRequest | CompletionRequest
    ) -> Generation | Forwarding:
        """A model on an OpenAI-compatible upstream gets the request passed through as sent."""
        backend = self.registry.text(request.model)
        if (upstream := self.registry.upstream(backend.card.id)) is not None:
            # Not cached when streamed: the cache keeps whole answers as the upstream sent them.
            meter = await self._admit_text(upstream, None if request.stream else kind, request, whole=True)
            return Forwarding(
                upstream,
                meter=meter,
                prompt_estimate=request.prompt_token_estimate(),
                fallbacks=self.registry.fallbacks(upstream.card.id),
            )
        return await self._generation(backend, kind, request)

    async def prompt_generation(self, request: GenerateTextRequest) -> Generation:
        """`/v1/generate/text` has no upstream form: a remote model gets the prompt rebuilt."""
        return await self._generation(self.registry.text(request.model), "generate", request)

    async def embedder(self, request: EmbeddingRequest) -> Embedder | Forwarding:
        backend = self.registry.embedding(request.model)
        tokens = request.token_estimate()
        upstream = self.registry.upstream(backend.card.id)
        if upstream is None:  # an upstream gets token ids as sent
            require_text_input(request, backend.card.id)
        meter = await self._admit(
            backend,
            request,
            tokens=tokens,
            prompt_tokens=tokens,
            kind="embeddings",
            whole=upstream is not None,
        )
        if upstream is not None:
            return Forwarding(
                upstream,
                meter=meter,
                prompt_estimate=tokens,
                fallbacks=self.registry.fallbacks(upstream.card.id),
            )
        return Embedder(backend, meter=meter)

    async def analyzer(self, request: SentimentRequest) -> Analyzer:
        backend = self.registry.sentiment(request.model)
        tokens = request.token_estimate()
        return Analyzer(
            backend, meter=await self._admit(backend, request, tokens=tokens, prompt_tokens=tokens)
        )

    async def _generation(
        self, backend: TextGenerationBackend, kind: Kind, request: TextRequest
    ) -> Generation:
        _require_features(backend, request)
        if not isinstance(request, GenerateTextRequest):
            response_constraint(request.response_format)  # a 400 for a schema it cannot enforce, uncharged
        if isinstance(request, ChatCompletionRequest):
            forced_calls(tool_plan(request))  # a 400 for tools, tool_choice or parameters it cannot take
        meter = await self._admit_text(backend, kind, request)
        return Generation(backend, max_tokens=self._max_tokens(request), meter=meter)

    async def _admit_text(
        self, backend: Backend, kind: Kind | None, request: TextRequest, *, whole: bool = False
    ) -> Meter:
        """`max_tokens` is decided here, once: the request's, else the server's default (for a passed-through
        request, what is reserved: it goes upstream as sent)."""
        max_tokens = self._max_tokens(request)
        return await self._admit(
            backend,
            request,
            tokens=request.token_estimate(max_tokens),
            prompt_tokens=request.prompt_token_estimate(),
            sequences=request.sequence_count(),
            kind=kind,
            max_tokens=max_tokens,
            whole=whole,
        )

    def _max_tokens(self, request: TextRequest) -> int:
        return request.requested_max_tokens() or self.default_max_tokens

    async def _admit(
        self,
        backend: Backend,
        request: BaseModel,
        *,
        tokens: int,
        prompt_tokens: int,
        sequences: int = 1,
        kind: Kind | None = None,
        max_tokens: int | None = None,
        whole: bool = False,
    ) -> Meter:
        """`tokens` is reserved; `prompt_tokens` is the least charged if the request fails after this;
        `sequences` is how many concurrency slots it holds; `whole`: every field of the request is part of
        its cache key (a passed-through request goes upstream with every field)."""
        context, model = self.context, backend.card.id
        context.admission = await self.gatekeeper.admit(
            self.principal, model=model, tokens=tokens, prompt_tokens=prompt_tokens, sequences=sequences
        )
        if kind is not None:
            context.cache = self.response_cache.lookup(
                self.principal,
                kind,
                request,
                max_tokens=max_tokens,
                cache_control=self.cache_control,
                whole=whole,
            )
        return Meter(model=model, usage=context.usage, cache=context.cache)


def _require_features(backend: Backend, request: TextRequest) -> None:
    """Refuses, before anything is charged, what the model cannot do (rather than ignore it)."""
    missing = request.features() - backend.card.features
    if missing:
        raise UnsupportedError(
            f"The model '{backend.card.id}' does not support {' or '.join(sorted(missing))}: "
            "send the request without it, or use a model that does.",
            param=sorted(missing)[0].replace(" ", "_"),
        )
