"""The served models: builds one backend per configured model, loads them, and hands them out by id."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from prometheus_client import CollectorRegistry

from llmapi.backends.base import (
    Backend,
    EmbeddingBackend,
    HasEngineStats,
    ModelCard,
    PassThroughBackend,
    SentimentBackend,
    TextGenerationBackend,
)
from llmapi.config import Settings
from llmapi.engine.engine_stats import EngineStats
from llmapi.errors import InvalidRequestError, ModelNotFoundError, ServiceUnavailableError, WrongTaskError
from llmapi.model_specs import ModelSpec, Task
from llmapi.observability.engine_metrics import EngineMetrics
from llmapi.observability.upstream_metrics import UpstreamMetrics

logger = logging.getLogger(__name__)


def build_backend(spec: ModelSpec, settings: Settings, metrics: BackendMetrics | None = None) -> Backend:
    """One backend for one model spec. Local backends are imported only when used, so a gateway-only
    install (no torch) can serve remote models."""
    threads = settings.engine.threads
    if spec.backend == "openai":
        from llmapi.backends.remote.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(spec, metrics.upstream if metrics else None)
    if spec.backend == "vader":
        from llmapi.backends.local.vader import VaderSentimentBackend

        return VaderSentimentBackend(spec)
    if spec.backend == "sentence-transformers":
        from llmapi.backends.local.embeddings import SentenceEmbeddingBackend

        return SentenceEmbeddingBackend(spec, threads=threads)
    if spec.task == "sentiment":
        from llmapi.backends.local.classifier import TextClassificationBackend

        return TextClassificationBackend(spec, threads=threads)
    from llmapi.backends.local.loader import load_causal_lm
    from llmapi.backends.local.text import LocalTextBackend

    engine_metrics = metrics.engine.for_model(spec.id) if metrics else None
    load = functools.partial(load_causal_lm, model_cache=settings.model_cache)
    return LocalTextBackend(spec, settings.engine, load=load, metrics=engine_metrics)


@dataclass(frozen=True, slots=True)
class BackendMetrics:
    """The metric families backends report to: in-process engines, and remote upstreams."""

    engine: EngineMetrics
    upstream: UpstreamMetrics

    @classmethod
    def on(cls, registry: CollectorRegistry) -> BackendMetrics:
        return cls(EngineMetrics(registry), UpstreamMetrics(registry))


class ModelRegistry:
    """Backends by model id, with their loading state."""

    def __init__(
        self, backends: Iterable[Backend], fallbacks: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        self._backends = {backend.card.id: backend for backend in backends}
        # Classified once: a runtime Protocol check costs microseconds, too much for every request.
        self._upstreams = {i: b for i, b in self._backends.items() if isinstance(b, PassThroughBackend)}
        self._fallbacks = fallbacks or {}
        self._ready: set[str] = set()
        self._failed: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings, metrics: BackendMetrics | None = None) -> ModelRegistry:
        return cls(
            (build_backend(spec, settings, metrics) for spec in settings.models),
            {spec.id: spec.fallbacks for spec in settings.models},
        )

    @property
    def ready(self) -> bool:
        return len(self._ready) == len(self._backends)

    def status(self) -> dict[str, str]:
        return {
            model_id: "ready"
            if model_id in self._ready
            else ("failed" if model_id in self._failed else "loading")
            for model_id in self._backends
        }

    async def start(self) -> None:
        """Load every model, one after the other (loading is CPU-bound; in parallel it only thrashes)."""
        for model_id, backend in self._backends.items():
            try:
                await backend.start()
            except Exception as exc:
                self._failed[model_id] = str(exc)
                logger.exception("model %s failed to load", model_id)
                continue
            self._ready.add(model_id)
            logger.info("model %s is ready (%s)", model_id, backend.card.task)

    async def close(self) -> None:
        await asyncio.gather(
            *(backend.close() for backend in self._backends.values()), return_exceptions=True
        )

    def engine_stats(self) -> list[tuple[str, EngineStats]]:
        """Load of every in-process engine, for metrics."""
        return [
            (model_id, backend.stats())
            for model_id, backend in self._backends.items()
            if isinstance(backend, HasEngineStats)
        ]

    def cards(self) -> list[ModelCard]:
        return [backend.card for backend in self._backends.values()]

    def card(self, model_id: str) -> ModelCard:
        return self._lookup(model_id).card

    def upstream(self, model_id: str) -> PassThroughBackend | None:
        """The model's backend if it passes requests through to an upstream."""
        return self._upstreams.get(model_id)

    def fallbacks(self, model_id: str) -> list[PassThroughBackend]:
        """The model's fallbacks that are ready, in the order configured (passed-through models, as the
        settings check)."""
        return [
            self._upstreams[i]
            for i in self._fallbacks.get(model_id, ())
            if i in self._ready and i in self._upstreams
        ]

    def text(self, model_id: str | None) -> TextGenerationBackend:
        return cast(TextGenerationBackend, self._for_task(model_id, "text-generation"))

    def embedding(self, model_id: str | None) -> EmbeddingBackend:
        return cast(EmbeddingBackend, self._for_task(model_id, "embedding"))

    def sentiment(self, model_id: str | None) -> SentimentBackend:
        return cast(SentimentBackend, self._for_task(model_id, "sentiment"))

    def _for_task(self, model_id: str | None, task: Task) -> Backend:
        if model_id is None:
            model_id = next((b.card.id for b in self._backends.values() if b.card.task == task), None)
            if model_id is None:
                raise InvalidRequestError(
                    f"No {task} model is configured on this server; name a model in the request "
                    "or add one to the models file.",
                    param="model",
                )
        backend = self._lookup(model_id)
        if backend.card.task != task:
            raise WrongTaskError(model_id, backend.card.task, task)
        if model_id not in self._ready:
            reason = self._failed.get(model_id)
            if reason is not None:
                raise ServiceUnavailableError(
                    f"The model '{model_id}' failed to load ({reason}); see the server log.",
                    code="model_failed",
                    retry_after=60,
                )
            raise ServiceUnavailableError(
                f"The model '{model_id}' is still loading; retry in a few seconds.", code="model_loading"
            )
        return backend

    def _lookup(self, model_id: str) -> Backend:
        backend = self._backends.get(model_id)
        if backend is None:
            raise ModelNotFoundError(model_id)
        return backend
