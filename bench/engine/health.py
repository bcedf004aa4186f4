"""Poll a health URL at a fixed interval from a separate process and report its latencies."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event

import httpx
import numpy as np

INTERVAL_S = 0.1


@dataclass
class HealthLatency:
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0

    def summary(self) -> dict[str, float]:
        values = self.latencies_ms or [float("nan")]
        return {
            "polls": len(self.latencies_ms),
            "failures": self.failures,
            "p50_ms": float(np.percentile(values, 50)),
            "p99_ms": float(np.percentile(values, 99)),
            "max_ms": float(max(values)),
        }


@contextmanager
def probing(url: str, into: HealthLatency) -> Iterator[None]:
    """While the block runs, GET `url` every INTERVAL_S in a child process; add the results to `into`."""
    context = multiprocessing.get_context("spawn")
    started, stop = context.Event(), context.Event()
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_poll, args=(url, started, stop, send), daemon=True)
    process.start()
    started.wait(timeout=30)  # polling has begun before the block starts its load
    try:
        yield
    finally:
        stop.set()
        latencies, failures = receive.recv()
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
        into.latencies_ms.extend(latencies)
        into.failures += failures


def _poll(url: str, started: Event, stop: Event, send: Connection) -> None:
    latencies: list[float] = []
    failures = 0
    with httpx.Client(timeout=5) as http:
        started.set()
        while not stop.is_set():
            start = time.perf_counter()
            try:
                ok = http.get(url).status_code == 200
            except httpx.HTTPError:
                ok = False
            elapsed = time.perf_counter() - start
            if ok:
                latencies.append(elapsed * 1000)
            else:
                failures += 1
            stop.wait(max(0.0, INTERVAL_S - elapsed))
    send.send((latencies, failures))
