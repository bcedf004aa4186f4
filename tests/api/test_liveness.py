"""The server stays responsive while it generates, and a client that leaves stops its generation."""

from __future__ import annotations

import re
import threading
import time

import httpx
import pytest
from tests.servers import ADMIN_HEADERS, RunningServer

TEXT_MODEL = "gpt2-124m-random"
LONG = {"model": TEXT_MODEL, "prompt": "x", "max_tokens": 1000, "temperature": 1.0, "seed": 3}


def running_requests(http: httpx.Client) -> int:
    text = http.get("/metrics").text
    match = re.search(
        rf'^llmapi_num_requests_running{{model_name="{TEXT_MODEL}"}} (\S+)$', text, re.MULTILINE
    )
    assert match, text
    return int(float(match.group(1)))


def wait_until(predicate: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def http(server: RunningServer) -> httpx.Client:
    # Generation itself is under test: the response cache must neither answer nor remember.
    headers = {**ADMIN_HEADERS, "Cache-Control": "no-cache, no-store"}
    with httpx.Client(base_url=server.base_url, timeout=120, headers=headers) as client:
        assert wait_until(lambda: running_requests(client) == 0)
        yield client


def test_health_answers_while_a_long_generation_runs(server: RunningServer, http: httpx.Client) -> None:
    generation = threading.Thread(
        target=lambda: httpx.post(
            f"{server.base_url}/v1/completions", json=LONG, timeout=120, headers=http.headers
        )
    )
    generation.start()
    assert wait_until(lambda: running_requests(http) == 1)
    for _ in range(5):
        assert http.get("/health/live").status_code == 200
    assert generation.is_alive(), "the generation should still be running while health checks answer"
    generation.join()


def test_a_stream_whose_client_leaves_stops_generating(http: httpx.Client) -> None:
    with http.stream("POST", "/v1/completions", json={**LONG, "stream": True}) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
        assert running_requests(http) == 1
    assert wait_until(lambda: running_requests(http) == 0, timeout=10)


def test_a_non_streamed_request_whose_client_leaves_stops_generating(
    server: RunningServer, http: httpx.Client
) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{server.base_url}/v1/completions",
            json=LONG,
            timeout=httpx.Timeout(120, read=1.0),
            headers=http.headers,
        )
    assert wait_until(lambda: running_requests(http) == 0, timeout=10)


def metric(text: str, name: str) -> float:
    match = re.search(rf'^{name}{{model_name="{TEXT_MODEL}"}} (\S+)$', text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


def test_engine_metrics_count_what_was_served(http: httpx.Client) -> None:
    before = http.get("/metrics").text
    body = {
        "model": TEXT_MODEL,
        "prompt": "import sys\n" * 8,  # a prompt of more than one 16-token block stays as a cached prefix
        "max_tokens": 5,
        "temperature": 0,
        "ignore_eos": True,
    }
    assert http.post("/v1/completions", json=body).status_code == 200
    response = http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    assert (
        metric(after, "llmapi_generation_tokens_total") - metric(before, "llmapi_generation_tokens_total")
        == 5
    )
    assert metric(after, "llmapi_prompt_tokens_total") > metric(before, "llmapi_prompt_tokens_total")
    for histogram in (
        "llmapi_time_to_first_token_seconds",
        "llmapi_e2e_request_latency_seconds",
        "llmapi_request_queue_time_seconds",
    ):
        assert metric(after, f"{histogram}_count") == metric(before, f"{histogram}_count") + 1
    assert (
        metric(after, "llmapi_inter_token_latency_seconds_count")
        >= metric(before, "llmapi_inter_token_latency_seconds_count") + 4
    )
    assert metric(after, "llmapi_batch_size_count") > metric(before, "llmapi_batch_size_count")
    assert "llmapi_num_requests_waiting" in after
    assert metric(after, "llmapi_kv_cache_bytes") > 0
