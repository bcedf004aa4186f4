"""A full engine queue answers 503 with Retry-After instead of growing memory."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import OpenAISchemas
from tests.servers import ADMIN_HEADERS, RunningServer, llmapi_server


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    models = tmp_path_factory.mktemp("small") / "models.yaml"
    models.write_text(
        "models:\n"
        "  - {id: tiny-queue, task: text-generation, backend: transformers,\n"
        "     source: 'builtin:gpt2-124m-random'}\n"
    )
    env = {"LLMAPI_ENGINE__MAX_BATCH_SIZE": "1", "LLMAPI_ENGINE__MAX_WAITING": "1"}
    with llmapi_server(Path(models.parent), models_file=models, env=env) as running:
        yield running


async def test_requests_beyond_the_queue_get_503_server_overloaded(
    small_server: RunningServer, openai_schemas: OpenAISchemas
) -> None:
    body = {"model": "tiny-queue", "prompt": "x", "max_tokens": 60, "ignore_eos": True}
    async with httpx.AsyncClient(base_url=small_server.base_url, timeout=120, headers=ADMIN_HEADERS) as http:
        responses = await asyncio.gather(*(http.post("/v1/completions", json=body) for _ in range(5)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 2, statuses  # one running, one waiting
    assert statuses.count(503) == 3, statuses
    refused = next(r for r in responses if r.status_code == 503)
    openai_schemas.validate("ErrorResponse", refused.json())
    assert refused.json()["error"]["type"] == "server_overloaded"
    assert int(refused.headers["retry-after"]) >= 1
