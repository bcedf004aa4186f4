"""Start-up time and memory of `llmapi serve` on the embedded defaults.

    .venv/bin/python -m bench.startup.run [--runs 3]

Measures, per run: seconds until /health/live answers (the process serves), seconds until /health/ready is 200
(every model loaded), the server's resident memory then, and after one chat completion, one embedding and one
sentiment request. The first run starts on an empty model cache (the default chat model is converted from its
GGUF file), the others on the cache it filled. Writes bench/startup/results.md.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from llmapi.model_specs import DEFAULT_TEXT_MODEL

RESULTS = Path(__file__).parent / "results.md"
ADMIN_KEY = secrets.token_hex(32)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def wait_for(url: str, status: int, deadline: float) -> float:
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == status:
                return time.monotonic()
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise TimeoutError(url)


def one_run(model_cache: str) -> dict[str, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    directory = tempfile.mkdtemp(prefix="llmapi-startup-")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "LLMAPI_LOG_LEVEL": "warning",
        "LLMAPI_ADMIN_KEY": ADMIN_KEY,
        "LLMAPI_DATABASE_URL": f"sqlite:///{directory}/llmapi.db",
        "LLMAPI_MODEL_CACHE": model_cache,
    }
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "llmapi.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        live = wait_for(f"{base}/health/live", 200, start + 120) - start
        ready = wait_for(f"{base}/health/ready", 200, start + 300) - start
        rss_ready = rss_mib(process.pid)
        with httpx.Client(
            base_url=base, timeout=120, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ) as http:
            chat = {
                "model": DEFAULT_TEXT_MODEL,
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 32,
            }
            http.post("/v1/chat/completions", json=chat).raise_for_status()
            http.post(
                "/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": ["a cat"] * 32}
            ).raise_for_status()
            http.post("/v1/analyze/sentiment", json={"text": "I like it"}).raise_for_status()
        rss_used = rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)
    return {"live_s": live, "ready_s": ready, "rss_ready_mib": rss_ready, "rss_used_mib": rss_used}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    model_cache = tempfile.mkdtemp(prefix="llmapi-startup-cache-")
    load_before = os.getloadavg()[0]
    try:
        first = one_run(model_cache)
        runs = [one_run(model_cache) for _ in range(parser.parse_args().runs)]
    finally:
        shutil.rmtree(model_cache, ignore_errors=True)
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    rows = [
        (
            "first start, empty model cache: every model loaded (the chat model converted)",
            f"{first['ready_s']:.2f} s",
        ),
        ("process serving (`/health/live` 200)", f"{median['live_s']:.2f} s"),
        ("every model loaded (`/health/ready` 200)", f"{median['ready_s']:.2f} s"),
        ("resident memory when ready", f"{median['rss_ready_mib']:.0f} MiB"),
        (
            "resident memory after a chat, an embedding and a sentiment request",
            f"{median['rss_used_mib']:.0f} MiB",
        ),
    ]
    table = "| measure | value |\n|---|---|\n"
    table += "".join(f"| {name} | {value} |\n" for name, value in rows)
    header = "# Start-up of `llmapi serve` (embedded defaults)\n\n"
    header += (
        f"`python -m bench.startup.run --runs {len(runs)}` on {os.cpu_count()} cores: the first start on an "
    )
    header += f"empty model cache, then the median of {len(runs)} later starts on the cache it filled. "
    header += f"Load average (1 min) before: {load_before:.1f}, after: {os.getloadavg()[0]:.1f}; over about "
    header += "1 on this 2-core machine, other work shared the cores and the times are longer.\n\n"
    RESULTS.write_text(header + table)
    print(table)


if __name__ == "__main__":
    main()
