"""Prometheus metrics, one registry per app (no process-global state), read at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llmapi.engine.engine_stats import EngineStats

EngineStatsSource = Callable[[], Iterable[tuple[str, EngineStats]]]


class EngineStatsCollector(Collector):
    """Requests running and waiting per in-process model, in the style of vLLM's `vllm:num_requests_*`."""

    def __init__(self, source: EngineStatsSource) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        running = GaugeMetricFamily(
            "llmapi_num_requests_running", "Requests in the model's running batch.", labels=["model_name"]
        )
        waiting = GaugeMetricFamily(
            "llmapi_num_requests_waiting", "Requests waiting for a batch slot.", labels=["model_name"]
        )
        kv_cache = GaugeMetricFamily(
            "llmapi_kv_cache_bytes",
            "Memory the engine's KV cache holds (running sequences and cached prefixes).",
            labels=["model_name"],
        )
        for model_id, stats in self._source():
            running.add_metric([model_id], stats.running)
            waiting.add_metric([model_id], stats.waiting)
            if stats.kv_cache_bytes is not None:
                kv_cache.add_metric([model_id], stats.kv_cache_bytes)
        yield running
        yield waiting
        yield kv_cache


def new_metrics_registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=False)
