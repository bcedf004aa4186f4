"""What a request that fails costs its caller, in process: one that fails after admission (an error status,
or a stream that ends with an error) is charged what it consumed, at least the estimate of its prompt; one
refused before admission costs nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.inprocess import InProcess, in_process
from tests.text_backend import ScriptedTextBackend

from llmapi.backends.base import GenerationChunk, Prompt
from llmapi.engine.sampling_params import SamplingParams
from llmapi.errors import ContextLengthExceededError, ServiceUnavailableError

GENERATE = "/v1/generate/text"
PROMPT = "x" * 3996  # estimated at 3996 // 4 + 1 = 1000 tokens
PROMPT_ESTIMATE = 1000
RESERVED = PROMPT_ESTIMATE + 1  # with max_tokens 1
BUDGET = 9 * PROMPT_ESTIMATE + RESERVED  # ten failures fit; the eleventh reservation does not


class RefusingTextBackend(ScriptedTextBackend):
    """Refuses every prompt once it has it, as the local model refuses one longer than its context."""

    async def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncIterator[GenerationChunk]:
        self.prompts.append(prompt)
        raise ContextLengthExceededError("The prompt is too long for this model.", param="prompt")
        yield  # pragma: no cover (an async generator)


class BreakingTextBackend(ScriptedTextBackend):
    """Streams one word, then fails, as a model does when its engine stops mid-generation."""

    async def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncIterator[GenerationChunk]:
        self.prompts.append(prompt)
        yield GenerationChunk("The")
        raise ServiceUnavailableError("The model is shutting down; retry on another replica.")


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[InProcess]:
    backends = ScriptedTextBackend(), RefusingTextBackend("refusing"), BreakingTextBackend("breaking")
    async with in_process(tmp_path, *backends) as running:
        yield running


async def generate(stack: InProcess, key: dict[str, str], model: str, **fields: Any) -> httpx.Response:
    body = {"model": model, "prompt": PROMPT, "max_tokens": 1, **fields}
    return await stack.client.post(GENERATE, json=body, headers=key)


async def developer(stack: InProcess, **limits: int) -> dict[str, str]:
    return await stack.new_key(role="developer", rate_limits=limits)


async def test_requests_that_fail_after_admission_spend_the_budget_by_their_prompts(stack: InProcess) -> None:
    key = await developer(stack, tokens_per_day=BUDGET)

    statuses = [(await generate(stack, key, "refusing")).status_code for _ in range(11)]

    # Ten prompts of 1,000 estimated tokens spend the budget; the eleventh is refused before any work.
    assert statuses == [400] * 10 + [429]


async def test_streams_that_end_with_an_error_spend_the_budget_by_their_prompts(stack: InProcess) -> None:
    key = await developer(stack, tokens_per_day=BUDGET)
    bodies: list[str] = []
    for _ in range(10):
        response = await generate(stack, key, "breaking", stream=True)
        assert response.status_code == 200
        bodies.append(response.text)

    refused = await generate(stack, key, "breaking", stream=True)

    assert all('"error"' in body for body in bodies)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "insufficient_quota"


async def test_requests_refused_before_admission_cost_nothing(stack: InProcess) -> None:
    key = await developer(stack, tokens_per_minute=BUDGET)
    for _ in range(20):
        assert (await generate(stack, key, "no-such-model")).status_code == 404
        assert (await generate(stack, key, "scripted", max_tokens=-1)).status_code == 400

    answered = await generate(stack, key, "scripted")

    assert answered.status_code == 200
    assert answered.headers["x-ratelimit-remaining-tokens"] == str(BUDGET - RESERVED)


async def test_a_request_that_succeeds_is_settled_to_its_real_usage_not_to_the_estimate(
    stack: InProcess,
) -> None:
    key = await developer(stack, tokens_per_day=2 * RESERVED - 1)

    first = await generate(stack, key, "scripted")  # uses 3 prompt tokens and 1 generated
    second = await generate(stack, key, "scripted")

    assert first.json()["usage"]["total_tokens"] == 4
    assert second.status_code == 200
