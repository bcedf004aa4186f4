"""Prometheus metrics of the in-process engines, named like vLLM's `vllm:*` with the prefix `llmapi_`.

Observations arrive from two places: the engine thread once per step (`ModelMetrics.on_step`, the engine's
StepObserver), and the event loop once per streamed output (`RequestTimer`).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram

from llmapi.engine.request_output import RequestOutput

_LATENCY_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
    40.0,
)
_INTER_TOKEN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
_REQUEST_BUCKETS = (0.1, 0.3, 0.5, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_TOKEN_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
_MODEL = ["model_name"]


class EngineMetrics:
    """The metric families, registered on one app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.prompt_tokens = Counter(
            "llmapi_prompt_tokens", "Prompt tokens prefilled.", _MODEL, registry=registry
        )
        self.generation_tokens = Counter(
            "llmapi_generation_tokens", "Tokens generated.", _MODEL, registry=registry
        )
        self.request_success = Counter(
            "llmapi_request_success",
            "Requests that ended, by finish reason (abort: the client left or the request failed).",
            [*_MODEL, "finished_reason"],
            registry=registry,
        )
        self.time_to_first_token = Histogram(
            "llmapi_time_to_first_token_seconds",
            "From the request reaching the engine to its first token.",
            _MODEL,
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.inter_token_latency = Histogram(
            "llmapi_inter_token_latency_seconds",
            "Between two tokens of one request.",
            _MODEL,
            buckets=_INTER_TOKEN_BUCKETS,
            registry=registry,
        )
        self.e2e_request_latency = Histogram(
            "llmapi_e2e_request_latency_seconds",
            "From the request reaching the engine to its last token.",
            _MODEL,
            buckets=_REQUEST_BUCKETS,
            registry=registry,
        )
        self.request_queue_time = Histogram(
            "llmapi_request_queue_time_seconds",
            "Time a request waited for a batch slot.",
            _MODEL,
            buckets=_REQUEST_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "llmapi_batch_size",
            "Sequences in one engine step.",
            _MODEL,
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.iteration_tokens = Histogram(
            "llmapi_iteration_tokens",
            "Tokens (decoded and prefilled) in one engine step.",
            _MODEL,
            buckets=_TOKEN_BUCKETS,
            registry=registry,
        )
        self.step_duration = Histogram(
            "llmapi_step_duration_seconds",
            "Wall time of one engine step.",
            _MODEL,
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )

    def for_model(self, model_id: str) -> ModelMetrics:
        return ModelMetrics(self, model_id)


class ModelMetrics:
    """The families bound to one model (label lookups done once, not per observation)."""

    def __init__(self, families: EngineMetrics, model_id: str) -> None:
        self._families = families
        self._model_id = model_id
        self.prompt_tokens = families.prompt_tokens.labels(model_id)
        self.generation_tokens = families.generation_tokens.labels(model_id)
        self.time_to_first_token = families.time_to_first_token.labels(model_id)
        self.inter_token_latency = families.inter_token_latency.labels(model_id)
        self.e2e_request_latency = families.e2e_request_latency.labels(model_id)
        self.request_queue_time = families.request_queue_time.labels(model_id)
        self._batch_size = families.batch_size.labels(model_id)
        self._iteration_tokens = families.iteration_tokens.labels(model_id)
        self._step_duration = families.step_duration.labels(model_id)

    def on_step(self, *, batch_size: int, decode_tokens: int, prefill_tokens: int, seconds: float) -> None:
        self._batch_size.observe(batch_size)
        self._iteration_tokens.observe(decode_tokens + prefill_tokens)
        self._step_duration.observe(seconds)

    def finished(self, reason: str) -> None:
        self._families.request_success.labels(self._model_id, reason).inc()

    def request_timer(self) -> RequestTimer:
        return RequestTimer(self)


class RequestTimer:
    """Times one request from the outputs it streams; `close()` once it ends, however it ends."""

    def __init__(self, metrics: ModelMetrics) -> None:
        self._metrics = metrics
        self._start = self._last = time.perf_counter()
        self._prompt_tokens = 0
        self._completion_tokens = 0
        self._finish_reason: str | None = None

    def on_output(self, output: RequestOutput) -> None:
        now = time.perf_counter()
        tokens = len(output.token_ids)
        if self._completion_tokens == 0 and tokens:
            self._metrics.time_to_first_token.observe(now - self._start)
            if output.queue_seconds is not None:
                self._metrics.request_queue_time.observe(output.queue_seconds)
        elif tokens:
            gap = (now - self._last) / tokens
            for _ in range(tokens):
                self._metrics.inter_token_latency.observe(gap)
        if tokens:
            self._last = now
        self._prompt_tokens = output.prompt_tokens
        self._completion_tokens = output.completion_tokens
        self._finish_reason = output.finish_reason

    def close(self) -> None:
        self._metrics.prompt_tokens.inc(self._prompt_tokens)
        self._metrics.generation_tokens.inc(self._completion_tokens)
        self._metrics.finished(self._finish_reason or "abort")
        if self._finish_reason is not None:
            self._metrics.e2e_request_latency.observe(time.perf_counter() - self._start)
