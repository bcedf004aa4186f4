"""One inference request through the gateway, in the order it goes: the model that serves it, admission
against the caller's limits, the response cache. What it grants is kept in the request's context, where the
response's headers and its settlement read it; the service then gets a handle that meters its work.

A new inference endpoint needs a protocol model, a service function taking one of these handles, and a thin
route; nothing here changes unless it is a new kind of model.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from llmapi.auth.principal import Principal
from llmapi.backends.base import Backend
from llmapi.backends.registry import ModelRegistry
from llmapi.protocol.chat import ChatCompletionRequest
from llmapi.protocol.completions import CompletionRequest
from llmapi.protocol.embeddings import EmbeddingRequest
from llmapi.protocol.generate import GenerateTextRequest
from llmapi.protocol.sentiment import SentimentRequest
from llmapi.services.admission import Gatekeeper
from llmapi.services.embeddings import Embedder
from llmapi.services.metering import Meter
from llmapi.services.request_context import RequestContext
from llmapi.services.response_cache import Kind, ResponseCache
from llmapi.services.sentiment import Analyzer
from llmapi.services.text_jobs import Generation

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

    async def generation(self, kind: Kind, request: TextRequest) -> Generation:
        """`max_tokens` is decided here, once: the request's, else the server's default."""
        backend = self.registry.text(request.model)
        max_tokens = request.requested_max_tokens() or self.default_max_tokens
        meter = await self._admit(
            backend,
            request,
            tokens=request.token_estimate(max_tokens),
            prompt_tokens=request.prompt_token_estimate(),
            sequences=request.sequence_count(),
            kind=kind,
            max_tokens=max_tokens,
        )
        return Generation(backend, max_tokens=max_tokens, meter=meter)

    async def embedder(self, request: EmbeddingRequest) -> Embedder:
        backend = self.registry.embedding(request.model)
        tokens = request.token_estimate()
        meter = await self._admit(backend, request, tokens=tokens, prompt_tokens=tokens, kind="embeddings")
        return Embedder(backend, meter=meter)

    async def analyzer(self, request: SentimentRequest) -> Analyzer:
        backend = self.registry.sentiment(request.model)
        tokens = request.token_estimate()
        return Analyzer(
            backend, meter=await self._admit(backend, request, tokens=tokens, prompt_tokens=tokens)
        )

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
    ) -> Meter:
        """`tokens` is reserved; `prompt_tokens` is the least charged if the request fails after this;
        `sequences` is how many concurrency slots it holds."""
        context, model = self.context, backend.card.id
        context.admission = await self.gatekeeper.admit(
            self.principal, model=model, tokens=tokens, prompt_tokens=prompt_tokens, sequences=sequences
        )
        if kind is not None:
            context.cache = self.response_cache.lookup(
                self.principal, kind, request, max_tokens=max_tokens, cache_control=self.cache_control
            )
        return Meter(model=model, usage=context.usage, cache=context.cache)
