"""Two instances on one PostgreSQL and one Redis: limits are exact across them, and they share the cache."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from tests.api.keys import bearer, new_key
from tests.real_services import two_instances_on_shared_services
from tests.servers import RunningServer

MODELS = (
    "models:\n"
    "  - {id: vader, task: sentiment, backend: vader}\n"
    "  - {id: all-MiniLM-L6-v2, task: embedding, backend: sentence-transformers}\n"
)


@pytest.fixture(scope="module")
def two_instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, RunningServer]]:
    with two_instances_on_shared_services(tmp_path_factory, MODELS) as instances:
        yield instances


async def test_a_burst_over_two_instances_passes_exactly_the_limit(
    two_instances: tuple[RunningServer, RunningServer],
) -> None:
    key = new_key(two_instances[0], rate_limits={"requests_per_minute": 10})
    clients = [
        httpx.AsyncClient(base_url=server.base_url, headers=bearer(key), timeout=60)
        for server in two_instances
    ]
    try:
        responses = await asyncio.gather(
            *(clients[i % 2].post("/v1/analyze/sentiment", json={"text": f"burst {i}"}) for i in range(30))
        )
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))

    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10, statuses
    assert statuses.count(429) == 20, statuses
    assert {r.status_code for i, r in enumerate(responses) if i % 2 == 0} <= {200, 429}


def test_the_remaining_count_is_shared(two_instances: tuple[RunningServer, RunningServer]) -> None:
    key = new_key(two_instances[0], rate_limits={"requests_per_minute": 50})
    remaining = []
    for server in (*two_instances, *two_instances):
        response = httpx.post(
            f"{server.base_url}/v1/analyze/sentiment", json={"text": "ok"}, headers=bearer(key), timeout=30
        )
        remaining.append(int(response.headers["x-ratelimit-remaining-requests"]))

    assert remaining == [49, 48, 47, 46]


def test_an_answer_cached_by_one_instance_is_a_hit_on_the_other(
    two_instances: tuple[RunningServer, RunningServer],
) -> None:
    key = new_key(two_instances[0])
    body = {"model": "all-MiniLM-L6-v2", "input": "shared across instances"}

    first, second = (
        httpx.post(f"{server.base_url}/v1/embeddings", json=body, headers=bearer(key), timeout=60)
        for server in two_instances
    )

    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert first.json()["data"] == second.json()["data"]


def test_ready_reports_redis(two_instances: tuple[RunningServer, RunningServer]) -> None:
    ready = httpx.get(f"{two_instances[0].base_url}/health/ready", timeout=10).json()

    assert ready["redis"] == "ok"
