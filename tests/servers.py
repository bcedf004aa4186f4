"""Start real `llmapi serve` processes for tests, the way a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_TIMEOUT_S = 180.0
# A test-only admin key (the server refuses keys shorter than 32 characters).
ADMIN_KEY = "llmapi-test-admin-key-0123456789abcdef"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
# What a test server serves unless a test names its own models file: the offline defaults with the random
# GPT-2 in place of the real chat model (it loads in a second and its code paths are the same).
TEST_MODELS = """\
models:
  - {id: gpt2-124m-random, task: text-generation, backend: transformers, source: 'builtin:gpt2-124m-random'}
  - {id: all-MiniLM-L6-v2, task: embedding, backend: sentence-transformers}
  - {id: vader, task: sentiment, backend: vader}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def llmapi_server(
    log_dir: Path, *, models_file: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """Run `llmapi serve` on a free port until /health/ready answers 200; stop it afterwards. Without a
    models file it serves TEST_MODELS."""
    port = free_port()
    log_path = log_dir / f"llmapi-{port}.log"
    if models_file is None:
        models_file = log_dir / f"models-{port}.yaml"
        models_file.write_text(TEST_MODELS)
    command = [sys.executable, "-m", "llmapi.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--config", str(models_file)]
    process_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "LLMAPI_ADMIN_KEY": ADMIN_KEY,
        "LLMAPI_DOCS": "on",  # tests read the API description (off by default)
        "LLMAPI_DATABASE_URL": f"sqlite:///{log_dir / f'llmapi-{port}.db'}",
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=process_env)
    server = RunningServer(f"http://127.0.0.1:{port}", log_path, process)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(server: RunningServer) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"llmapi exited with {server.process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"llmapi was not ready within {READY_TIMEOUT_S} s:\n{server.log()}")
