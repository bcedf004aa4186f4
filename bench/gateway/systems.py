"""The processes of the proxy benchmark: the fixed-answer upstream and the proxies in front of it.

Each is started as a user would start it, waited for until it answers a chat completion, pinned with every
thread it has onto its core(s), and stopped afterwards. `Running.pid` is the process whose tree the CPU
columns add up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from tests.servers import ADMIN_HEADERS, free_port, llmapi_server

from bench.gateway.load import pin

ROOT = Path(__file__).resolve().parents[2]
LITELLM_VENV = ROOT / "bench" / ".venv-litellm"
LITELLM_MASTER_KEY = "sk-bench-litellm-master-key-0123456789"
MODEL = "bench-upstream"
PATH = "/v1/chat/completions"
PROBE = orjson.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})


@dataclass(frozen=True)
class Running:
    url: str  # base URL, without /v1
    pid: int
    headers: dict[str, str]


@contextmanager
def upstream(cores: set[int]) -> Iterator[Running]:
    port = free_port()
    command = [sys.executable, "-m", "bench.gateway.upstream", "--port", str(port)]
    with _process(command, Path(os.devnull), cores=cores) as process:
        server = Running(f"http://127.0.0.1:{port}", process.pid, {})
        _wait_answers(server, process, 30)
        yield server


@contextmanager
def bare_proxy(upstream_url: str, cores: set[int], log: Path) -> Iterator[Running]:
    """uvicorn, one worker, uvloop + httptools, no access log: bench/gateway/proxy.py."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.gateway.proxy:app", "--port", str(port)]
    command += ["--workers", "1", "--loop", "uvloop", "--http", "httptools"]
    command += ["--no-access-log", "--log-level", "warning"]
    env: dict[str, str | None] = {"BENCH_UPSTREAM_URL": upstream_url + PATH}
    with _process(command, log, env=env, cores=cores) as process:
        server = Running(f"http://127.0.0.1:{port}", process.pid, {})
        _wait_answers(server, process, 30)
        yield server


def litellm_installed() -> bool:
    return (LITELLM_VENV / "bin" / "litellm").exists()


def install_litellm() -> None:
    """`make bench-litellm`: LiteLLM's proxy in its own venv, from bench/gateway/requirements-litellm.txt."""
    subprocess.run(["make", "bench-litellm"], cwd=ROOT, check=True)


def litellm_version() -> str:
    for info in (LITELLM_VENV / "lib").glob("python*/site-packages/litellm-*.dist-info"):
        return info.name.removeprefix("litellm-").removesuffix(".dist-info")
    return "unknown"


@contextmanager
def litellm_proxy(upstream_url: str, cores: set[int], directory: Path) -> Iterator[Running]:
    """`litellm --config`, one uvicorn worker, master key, no database; `openai/<model>` at the upstream."""
    config = directory / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {upstream_url}/v1\n"
        "      api_key: sk-upstream-needs-none\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_MASTER_KEY}\n"
    )
    port = free_port()
    command = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    # No fetch of the model price list at start (this machine has no internet); no database.
    env: dict[str, str | None] = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "DATABASE_URL": None,
    }
    with _process(command, directory / "litellm.log", env=env, cores=cores) as process:
        headers = {"Authorization": f"Bearer {LITELLM_MASTER_KEY}"}
        server = Running(f"http://127.0.0.1:{port}", process.pid, headers)
        _wait_answers(server, process, 180)
        pin(process.pid, cores)  # again: threads and workers that started while it got ready
        yield server


def models_file(directory: Path, upstream_url: str) -> Path:
    path = directory / "models.yaml"
    path.write_text(
        "models:\n"
        f"  - id: {MODEL}\n"
        "    task: text-generation\n"
        "    backend: openai\n"
        "    options:\n"
        f"      base_url: {upstream_url}/v1\n"
    )
    return path


@contextmanager
def llmapi(
    upstream_url: str,
    cores: set[int],
    directory: Path,
    env: dict[str, str],
    key: Mapping[str, object] | None,
) -> Iterator[Running]:
    """A real `llmapi serve` (tests.servers.llmapi_server) with only the upstream's model; requests carry
    the admin key, or a developer key made with `key` (the fields POST /v1/admin/keys takes)."""
    from tests.api.keys import bearer, new_key

    directory.mkdir(parents=True, exist_ok=True)
    with llmapi_server(directory, models_file=models_file(directory, upstream_url), env=env) as server:
        pin(server.process.pid, cores)
        headers = ADMIN_HEADERS if key is None else bearer(new_key(server, **key))
        running = Running(server.base_url, server.process.pid, dict(headers))
        _wait_answers(running, server.process, 30)
        yield running


@contextmanager
def _process(
    command: list[str], log: Path, *, cores: set[int], env: dict[str, str | None] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`env` adds to this process's environment; a None value removes the variable."""
    merged = {**os.environ, **(env or {})}
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={name: value for name, value in merged.items() if value is not None},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        pin(process.pid, cores)
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to its process group (LiteLLM may start workers), SIGKILL after 20 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_answers(server: Running, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    headers = {"content-type": "application/json", **server.headers}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}; see its log")
        try:
            response = httpx.post(server.url + PATH, content=PROBE, headers=headers, timeout=5)
            if response.status_code == 200 and b"chat.completion" in response.content:
                return
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise RuntimeError(f"{process.args!r} did not answer a chat completion within {timeout_s} s: {last}")
