"""Redis going away mid-run: the API keeps serving (fail-open) or refuses plainly (fail-closed), does not wait
on Redis request after request, and recovers by itself. Uses a private redis-server, never the shared one."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis
from tests.api.keys import bearer, new_key
from tests.real_services import OwnRedis, own_redis
from tests.servers import RunningServer, llmapi_server

SENTIMENT_ONLY = "models:\n  - {id: vader, task: sentiment, backend: vader}\n"
RECOVERY_TIMEOUT_S = 30


@contextmanager
def _server(directory: Path, redis_url: str, **env: str) -> Iterator[RunningServer]:
    models = directory / "models.yaml"
    models.write_text(SENTIMENT_ONLY)
    with llmapi_server(directory, models_file=models, env={"LLMAPI_REDIS_URL": redis_url, **env}) as running:
        yield running


def _metric(server: RunningServer, name: str) -> float:
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    values = [float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)]
    return sum(values)


def _analyze(server: RunningServer, key: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/analyze/sentiment", json={"text": "fine"}, headers=bearer(key), timeout=30
    )


def _ready_redis(server: RunningServer) -> str:
    return str(httpx.get(f"{server.base_url}/health/ready", timeout=10).json()["redis"])


def _wait_for(condition: Callable[[], bool], timeout: float = RECOVERY_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _counted_in(server: OwnRedis) -> bool:
    """Whether a rate-limit key is in this Redis (they expire about a second after the last request)."""
    with redis.Redis.from_url(server.url) as client:
        return bool(client.keys("llmapi:rl:*"))


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    with own_redis(tmp_path) as running:
        yield running


def test_fail_open_serves_through_an_outage_and_recovers(tmp_path: Path, private_redis: OwnRedis) -> None:
    with _server(tmp_path, private_redis.url) as server:
        key = new_key(server, rate_limits={"requests_per_minute": 1000})
        assert _analyze(server, key).status_code == 200
        assert _counted_in(private_redis), "the limit should be counted in Redis while it is up"

        private_redis.stop()
        during = [_analyze(server, key) for _ in range(20)]

        assert [r.status_code for r in during] == [200] * 20
        assert during[-1].headers["x-ratelimit-limit-requests"] == "1000"  # limited in-process meanwhile
        assert _ready_redis(server) == "degraded"
        assert _metric(server, "llmapi_redis_degraded") == 1
        # The breaker opened after a few failures: the other requests did not wait on Redis at all.
        assert _metric(server, "llmapi_redis_errors_total") < 10
        assert _metric(server, "llmapi_ratelimit_fallback_total") >= 20

        private_redis.start()
        assert _wait_for(lambda: _analyze(server, key).status_code == 200 and _ready_redis(server) == "ok")
        assert _wait_for(lambda: _analyze(server, key).status_code == 200 and _counted_in(private_redis))
        assert _metric(server, "llmapi_redis_degraded") == 0


def test_fail_closed_refuses_with_503_during_an_outage(tmp_path: Path, private_redis: OwnRedis) -> None:
    with _server(tmp_path, private_redis.url, LLMAPI_LIMITS__ON_REDIS_FAILURE="closed") as server:
        key = new_key(server)
        assert _analyze(server, key).status_code == 200

        private_redis.stop()
        refused = _analyze(server, key)

        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "limits_unavailable"
        assert "retry-after" in refused.headers

        private_redis.start()
        assert _wait_for(lambda: _analyze(server, key).status_code == 200)
