"""Limits on one instance (in-process store): token limits reserved and settled, budgets, concurrency,
per-model limits, the load guard, OpenAI's headers and the SDK's RateLimitError."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from tests.api.keys import bearer, new_key
from tests.conftest import OpenAISchemas
from tests.servers import RunningServer, llmapi_server

TEXT_MODEL = "gpt2-124m-random"


def generate(server: RunningServer, key: str, max_tokens: int, prompt: str = "Once") -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/generate/text",
        json={"prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True, "temperature": 1.0},
        headers=bearer(key),
        timeout=120,
    )


def test_responses_carry_openai_rate_limit_headers(server: RunningServer) -> None:
    key = new_key(server, role="developer", rate_limits={"requests_per_minute": 5, "tokens_per_minute": 5000})

    first, second = generate(server, key, 4), generate(server, key, 4)

    assert first.status_code == second.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "5"
    assert first.headers["x-ratelimit-remaining-requests"] == "4"
    assert second.headers["x-ratelimit-remaining-requests"] == "3"
    assert first.headers["x-ratelimit-limit-tokens"] == "5000"
    # Reserved before the call: max_tokens plus an estimate of the prompt (4 characters a token, plus one).
    assert first.headers["x-ratelimit-remaining-tokens"] == str(5000 - 4 - 2)
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")


def test_the_request_limit_refuses_with_429_in_the_openai_shape(
    server: RunningServer, openai_schemas: OpenAISchemas
) -> None:
    key = new_key(server, role="service", rate_limits={"requests_per_minute": 2})
    statuses = [generate(server, key, 1).status_code for _ in range(2)]
    refused = generate(server, key, 1)

    assert statuses == [200, 200]
    assert refused.status_code == 429
    openai_schemas.validate("ErrorResponse", refused.json())
    error = refused.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limit_exceeded", "requests")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"


def test_the_sdk_raises_rate_limit_error(server: RunningServer) -> None:
    key = new_key(server, rate_limits={"requests_per_minute": 1})
    client = openai.OpenAI(base_url=server.api_url, api_key=key, max_retries=0, timeout=60)
    ask = {"model": TEXT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    client.chat.completions.create(**ask)  # type: ignore[call-overload]

    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(**ask)  # type: ignore[call-overload]

    assert refused.value.code == "rate_limit_exceeded"


def test_tokens_are_reserved_up_front_and_settled_to_the_real_count(server: RunningServer) -> None:
    key = new_key(server, rate_limits={"tokens_per_minute": 300})

    # max_tokens 250 reserves more than half the minute's tokens; the settled count is the real usage.
    first = generate(server, key, 250)
    assert first.status_code == 200, first.text
    used = first.json()["usage"]["total_tokens"]
    remaining = int(first.headers["x-ratelimit-remaining-tokens"])
    assert remaining < 300 - 250

    refused = generate(server, key, 250)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "tokens"

    # A short request still fits in what the settled count left over.
    small = generate(server, key, 300 - used - 10)
    assert small.status_code == 200, small.text


def test_a_request_larger_than_the_token_limit_says_so(server: RunningServer) -> None:
    key = new_key(server, rate_limits={"tokens_per_minute": 100})

    refused = generate(server, key, 500)

    assert refused.status_code == 429
    assert "lower max_tokens" in refused.json()["error"]["message"]


def test_a_spent_daily_budget_is_insufficient_quota(server: RunningServer) -> None:
    key = new_key(server, rate_limits={"tokens_per_day": 100})
    client = openai.OpenAI(base_url=server.api_url, api_key=key, max_retries=0, timeout=60)

    def ask() -> object:
        return client.completions.create(
            model=TEXT_MODEL, prompt="x", max_tokens=40, extra_body={"ignore_eos": True}
        )

    ask()
    ask()
    with pytest.raises(openai.RateLimitError) as refused:
        ask()

    assert refused.value.code == "insufficient_quota"
    assert refused.value.type == "insufficient_quota"  # type: ignore[attr-defined]


async def test_concurrent_requests_beyond_the_limit_are_refused_until_one_ends(server: RunningServer) -> None:
    key = new_key(server, rate_limits={"max_concurrent": 1})
    long_body = {"prompt": "x", "max_tokens": 200, "ignore_eos": True, "stream": True}
    async with httpx.AsyncClient(base_url=server.base_url, headers=bearer(key), timeout=120) as http:
        async with http.stream("POST", "/v1/generate/text", json=long_body) as streaming:
            assert streaming.status_code == 200
            lines = streaming.aiter_lines()
            await anext(lines)  # the stream is running
            meanwhile = await http.post("/v1/generate/text", json={"prompt": "x", "max_tokens": 1})
            async for _ in lines:
                pass
        after = await http.post("/v1/generate/text", json={"prompt": "x", "max_tokens": 1})

    assert meanwhile.status_code == 429
    assert "concurrent" in meanwhile.json()["error"]["message"]
    assert after.status_code == 200


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Per-model limits on vader, and an instance that takes one inference request at a time."""
    directory = tmp_path_factory.mktemp("guarded")
    models = directory / "models.yaml"
    models.write_text(
        "models:\n"
        "  - {id: vader, task: sentiment, backend: vader}\n"
        f"  - {{id: {TEXT_MODEL}, task: text-generation, backend: transformers,\n"
        f"     source: 'builtin:{TEXT_MODEL}'}}\n"
    )
    env = {
        "LLMAPI_LIMITS__MODELS": '{"vader": {"requests_per_minute": 2}}',
        "LLMAPI_LIMITS__MAX_INFLIGHT_REQUESTS": "1",
    }
    with llmapi_server(Path(directory), models_file=models, env=env) as running:
        yield running


def test_a_per_model_limit_applies_to_that_model_only(guarded_server: RunningServer) -> None:
    key = new_key(guarded_server)
    with httpx.Client(base_url=guarded_server.base_url, headers=bearer(key), timeout=60) as http:
        analysed = [http.post("/v1/analyze/sentiment", json={"text": "fine"}) for _ in range(3)]
        generated = http.post("/v1/generate/text", json={"prompt": "x", "max_tokens": 1})

    assert [r.status_code for r in analysed] == [200, 200, 429]
    assert "model 'vader'" in analysed[2].json()["error"]["message"]
    assert generated.status_code == 200


async def test_the_instance_sheds_load_beyond_its_inflight_limit(
    guarded_server: RunningServer, openai_schemas: OpenAISchemas
) -> None:
    key = new_key(guarded_server)
    body = {"prompt": "x", "max_tokens": 100, "ignore_eos": True}
    async with httpx.AsyncClient(base_url=guarded_server.base_url, headers=bearer(key), timeout=120) as http:
        responses = await asyncio.gather(*(http.post("/v1/generate/text", json=body) for _ in range(3)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200 and 503 in statuses, statuses
    shed = next(r for r in responses if r.status_code == 503)
    openai_schemas.validate("ErrorResponse", shed.json())
    assert shed.json()["error"]["type"] == "server_overloaded"
    assert "retry-after" in shed.headers
