"""Where an answer is looked up in the response cache, counted in the request's usage and stored: once,
for every kind of inference."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from pydantic import BaseModel

from llmapi.backends.base import Backend
from llmapi.services.response_cache import NO_CACHE, CacheLookup
from llmapi.services.usage import UsageNote


class Counted(BaseModel):
    """An answer as the cache keeps it, with the tokens it counts for."""

    prompt_tokens: int
    completion_tokens: int = 0
    model: str | None = None
    """The model that answered, where it may not be the one asked for (a fallback)."""


Answer = TypeVar("Answer", bound=Counted)
ModelBackend = TypeVar("ModelBackend", bound=Backend)


class Meter:
    """One request's cache lookup and usage note. Without them (tests, tools) it only counts, in a note of
    its own."""

    def __init__(self, *, model: str, usage: UsageNote | None = None, cache: CacheLookup = NO_CACHE) -> None:
        self.model = model
        self.usage = usage or UsageNote()
        self.usage.model = model
        self.cache = cache

    async def answer(self, kind: type[Answer], work: Callable[[], Awaitable[Answer]]) -> Answer:
        """The cached answer if there is one, else `work`'s, counted and stored."""
        if (cached := await self.cached(kind)) is not None:
            return cached
        answer = await work()
        self.count(answer.prompt_tokens, answer.completion_tokens)
        await self.cache.put(answer)
        return answer

    async def cached(self, kind: type[Answer]) -> Answer | None:
        """The cached answer, counted as a cached request (its prompt, no generated tokens)."""
        cached = await self.cache.get(kind)
        if cached is not None:
            if cached.model:
                self.model = self.usage.model = cached.model
            self.usage.count_cached(model=self.model, prompt_tokens=cached.prompt_tokens)
        return cached

    def count(self, prompt_tokens: int, completion_tokens: int = 0) -> None:
        self.usage.count(model=self.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)


class MeteredBackend(Generic[ModelBackend]):
    """A backend as one request uses it: its work goes through the request's `meter` (without one, a meter
    that only counts)."""

    def __init__(self, backend: ModelBackend, *, meter: Meter | None = None) -> None:
        self.backend = backend
        self.meter = meter or Meter(model=backend.card.id)
