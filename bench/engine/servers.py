"""Start an HTTP server as a child process on 127.0.0.1, wait until it is ready, always stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_TIMEOUT_S = 300.0
HOST = "127.0.0.1"


class ServerRefusedError(RuntimeError):
    """The server exited before it was ready (e.g. it rejected its configuration)."""


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v1"

    def rss_mib(self) -> float:
        """Resident memory of the server process (VmRSS)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for pid {self.process.pid}")

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(
    command: Sequence[str], *, port: int, ready_path: str, log_path: Path, env: dict[str, str]
) -> Iterator[RunningServer]:
    """Run `command` (which must listen on HOST:port) until `ready_path` answers 200; stop it on exit."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    server = RunningServer(f"http://{HOST}:{port}", process, log_path)
    try:
        _wait_ready(server, ready_path)
        yield server
    finally:
        _stop(process)


def _wait_ready(server: RunningServer, ready_path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerRefusedError(
                f"exited with status {server.process.returncode} before it was ready:\n{server.log_tail()}"
            )
        try:
            if httpx.get(server.base_url + ready_path, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"not ready within {READY_TIMEOUT_S:.0f} s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
