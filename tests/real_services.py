"""Real services the tests use: PostgreSQL and Redis on this machine. Where one is unreachable, the tests
that need it skip with the reason, unless LLMAPI_REQUIRE_SERVICES=1 makes that a failure (CI sets it)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

from tests.servers import RunningServer, llmapi_server

POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
# A test-only secret key: instances on one PostgreSQL database need the same one (32+ characters).
SECRET_KEY = "llmapi-test-secret-key-0123456789abcdef"


def require_service(name: str, port: int) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        reason = f"{name} at 127.0.0.1:{port} is not reachable ({exc})"
        if os.environ.get("LLMAPI_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} and LLMAPI_REQUIRE_SERVICES=1")
        pytest.skip(reason)


def require_redis() -> str:
    require_service("Redis", 6379)
    return REDIS_URL


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL whose connections live in a new, empty schema of the shared `test` database."""
    require_service("PostgreSQL", 5432)
    schema = f"llmapi_test_{uuid.uuid4().hex[:12]}"

    async def execute(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_DSN, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(execute(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_DSN}?search_path={schema}"
    finally:
        asyncio.run(execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


class OwnRedis:
    """A private `redis-server` on a free port that a test may stop and start again (never the shared one)."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            reason = "redis-server is not installed; the Redis fault tests start their own"
            if os.environ.get("LLMAPI_REQUIRE_SERVICES") == "1":
                pytest.fail(f"{reason} and LLMAPI_REQUIRE_SERVICES=1")
            pytest.skip(reason)
        command = [
            executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self._process = subprocess.Popen(
            command, cwd=self._directory, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


@contextmanager
def own_redis(directory: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def two_instances_on_shared_services(
    tmp_path_factory: pytest.TempPathFactory, models_yaml: str
) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two `llmapi serve` processes on one new PostgreSQL schema and the shared Redis, with one secret key."""
    redis_url = require_redis()
    with postgres_schema() as database_url:
        env = {
            "LLMAPI_DATABASE_URL": database_url,
            "LLMAPI_REDIS_URL": redis_url,
            "LLMAPI_SECRET_KEY": SECRET_KEY,
        }
        directories = [tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second")]
        for directory in directories:
            (directory / "models.yaml").write_text(models_yaml)
        with (
            llmapi_server(directories[0], models_file=directories[0] / "models.yaml", env=env) as first,
            llmapi_server(directories[1], models_file=directories[1] / "models.yaml", env=env) as second,
        ):
            yield first, second
