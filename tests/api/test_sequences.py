"""`n` multiplies the work of a request (n prefills, n generations), so it multiplies what the request is
charged and the concurrency it takes, in process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.inprocess import InProcess, in_process
from tests.text_backend import ScriptedTextBackend

CHAT = "/v1/chat/completions"
QUESTION = "Capital of France?"  # estimated at 18 // 4 + 1 = 5 tokens; the scripted model counts 4
LIMIT = 10_000


@pytest.fixture
def slow() -> ScriptedTextBackend:
    return ScriptedTextBackend("slow", delay_s=0.1)


@pytest.fixture
async def stack(tmp_path: Path, slow: ScriptedTextBackend) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path, ScriptedTextBackend(), slow) as running:
        yield running


async def chat(
    stack: InProcess, key: dict[str, str], n: int, model: str = "scripted", **fields: Any
) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": QUESTION}], "n": n, **fields}
    return await stack.client.post(CHAT, json=body, headers=key)


async def test_n_choices_reserve_and_count_the_prompt_once_per_choice(stack: InProcess) -> None:
    key = await stack.new_key(role="developer", rate_limits={"tokens_per_minute": LIMIT})

    answered = await chat(stack, key, n=3, max_tokens=2)

    assert answered.status_code == 200
    assert answered.headers["x-ratelimit-remaining-tokens"] == str(LIMIT - 3 * 5 - 3 * 2)
    assert answered.json()["usage"]["prompt_tokens"] == 3 * 4


async def test_a_request_takes_one_concurrency_slot_per_sequence(
    stack: InProcess, slow: ScriptedTextBackend
) -> None:
    key = await stack.new_key(role="developer", rate_limits={"max_concurrent": 4})
    holding = asyncio.create_task(chat(stack, key, n=2, model="slow", max_tokens=3))
    while len(slow.prompts) < 2:  # noqa: ASYNC110 (the backend has no event to wait on)
        await asyncio.sleep(0.01)

    too_many = await chat(stack, key, n=3)
    fitting = await chat(stack, key, n=2)

    assert (await holding).status_code == 200
    assert too_many.status_code == 429
    assert "4 sequences at a time" in too_many.json()["error"]["message"]
    assert fitting.status_code == 200


async def test_n_past_the_concurrency_limit_is_refused_saying_why(stack: InProcess) -> None:
    key = await stack.new_key(role="developer", rate_limits={"max_concurrent": 4})

    refused = await chat(stack, key, n=5)

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limit_exceeded", "requests")
    assert "runs 5 sequences at once" in error["message"]
    assert "lower n" in error["message"]
