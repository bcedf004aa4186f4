"""Hostile bodies against a real `llmapi serve`: the unauthenticated ones are never decoded, the
authenticated ones are decoded off the event loop, and health checks stay fast meanwhile (issue 10, item 1:
one 4 MiB Protobuf body of two million empty messages held every request of the instance for 10 s)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.api.test_pipeline import JSON, PROTOBUF, XML, hostile_bodies
from tests.servers import ADMIN_HEADERS, RunningServer

CHAT = "/v1/chat/completions"
ATTACKERS = 3
HEALTH_CHECKS = 30


def health_latencies_under_attack(server: RunningServer, body: bytes, headers: dict[str, str]) -> list[int]:
    """Statuses of the attackers' answers; asserts health checks sent meanwhile answered within 100 ms."""
    latencies: list[float] = []

    def attack() -> int:
        return httpx.post(f"{server.base_url}{CHAT}", content=body, headers=headers, timeout=60).status_code

    with ThreadPoolExecutor(ATTACKERS) as pool, httpx.Client(base_url=server.base_url, timeout=10) as health:
        attacks = [pool.submit(attack) for _ in range(ATTACKERS)]
        while not all(a.done() for a in attacks) or len(latencies) < HEALTH_CHECKS:
            start = time.perf_counter()
            assert health.get("/health/live").status_code == 200
            latencies.append(time.perf_counter() - start)
            time.sleep(0.005)
        statuses = [a.result() for a in attacks]
    assert max(latencies) < 0.1, f"slowest health check {max(latencies) * 1000:.0f} ms"
    return statuses


@pytest.mark.parametrize("media_type", [JSON, XML, PROTOBUF])
def test_unauthenticated_hostile_bodies_are_401_and_leave_health_fast(
    server: RunningServer, media_type: str
) -> None:
    statuses = health_latencies_under_attack(
        server, hostile_bodies()[media_type], {"Content-Type": media_type}
    )

    assert statuses == [401] * ATTACKERS


@pytest.mark.parametrize("media_type", [JSON, XML, PROTOBUF])
def test_authenticated_hostile_bodies_are_400_and_leave_health_fast(
    server: RunningServer, media_type: str
) -> None:
    statuses = health_latencies_under_attack(
        server, hostile_bodies()[media_type], {**ADMIN_HEADERS, "Content-Type": media_type}
    )

    assert statuses == [400] * ATTACKERS
