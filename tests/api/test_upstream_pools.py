"""A model served by a pool of upstream replicas, and models that fall back on others: through the whole
stack, against real servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.api.inprocess import in_process
from tests.recording_upstream import RecordingUpstream, recording_upstream
from tests.servers import ADMIN_HEADERS

from llmapi.backends.remote.openai_compat import OpenAICompatBackend
from llmapi.config import ConfigError, Settings
from llmapi.model_specs import ModelSpec

CHAT = "/v1/chat/completions"


def _backend(model: str, *upstreams: RecordingUpstream) -> OpenAICompatBackend:
    options = {"base_url": [u.url for u in upstreams], "max_retries": 1, "timeout": 10}
    return OpenAICompatBackend(ModelSpec(id=model, task="text-generation", backend="openai", options=options))


def _body(model: str, **fields: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **fields}


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[RecordingUpstream, RecordingUpstream]]:
    async with recording_upstream("a") as a, recording_upstream("b") as b:
        yield a, b


async def test_a_replica_killed_mid_run_loses_no_request(
    tmp_path: Path, replicas: tuple[RecordingUpstream, RecordingUpstream]
) -> None:
    a, b = replicas
    a.delay_s = b.delay_s = 0.02
    async with in_process(tmp_path, _backend("pooled", a, b)) as stack:

        async def one() -> int:
            response = await stack.client.post(CHAT, json=_body("pooled"), headers=ADMIN_HEADERS)
            return response.status_code

        first = [asyncio.create_task(one()) for _ in range(20)]
        while not a.requests:  # noqa: ASYNC110 (the upstream has no event to wait on)
            await asyncio.sleep(0.001)
        await a.stop()
        statuses = await asyncio.gather(*first, *(one() for _ in range(20)))

    assert statuses == [200] * 40
    assert a.requests and len(b.requests) >= 20  # both served until a died; b served the rest


async def test_requests_spread_over_the_replicas(
    tmp_path: Path, replicas: tuple[RecordingUpstream, RecordingUpstream]
) -> None:
    a, b = replicas
    a.delay_s = b.delay_s = 0.05
    async with in_process(tmp_path, _backend("pooled", a, b)) as stack:
        await asyncio.gather(
            *(stack.client.post(CHAT, json=_body("pooled"), headers=ADMIN_HEADERS) for _ in range(10))
        )

    assert (len(a.requests), len(b.requests)) == (5, 5)


async def test_a_failing_model_falls_back_and_says_which_answered(
    tmp_path: Path, replicas: tuple[RecordingUpstream, RecordingUpstream]
) -> None:
    failing, healthy = replicas
    failing.fail = 503
    backends = (_backend("primary", failing), _backend("backup", healthy))
    async with in_process(tmp_path, *backends, fallbacks={"primary": ["backup"]}) as stack:
        whole = await stack.client.post(CHAT, json=_body("primary"), headers=ADMIN_HEADERS)
        streamed = await stack.client.post(CHAT, json=_body("primary", stream=True), headers=ADMIN_HEADERS)
        direct_failure = await stack.client.post(CHAT, json=_body("backup"), headers=ADMIN_HEADERS)
        healthy.fail = 500
        both_down = await stack.client.post(CHAT, json=_body("primary"), headers=ADMIN_HEADERS)

    assert (whole.status_code, whole.headers["x-llmapi-model"], whole.json()["model"]) == (
        200,
        "backup",
        "backup",
    )
    assert streamed.status_code == 200 and streamed.headers["x-llmapi-model"] == "backup"
    assert '"model":"backup"' in streamed.text and streamed.text.endswith("data: [DONE]\n\n")
    assert direct_failure.status_code == 200
    assert both_down.status_code == 500  # the last fallback's failure, its status kept
    assert both_down.json()["error"]["type"] == "upstream_error"


async def test_a_cached_fallback_answer_still_names_the_model_that_answered(
    tmp_path: Path, replicas: tuple[RecordingUpstream, RecordingUpstream]
) -> None:
    failing, healthy = replicas
    failing.fail = 503
    backends = (_backend("primary", failing), _backend("backup", healthy))
    async with in_process(tmp_path, *backends, fallbacks={"primary": ["backup"]}) as stack:
        answers = [
            await stack.client.post(CHAT, json=_body("primary", temperature=0), headers=ADMIN_HEADERS)
            for _ in range(2)
        ]

    assert [a.headers["x-cache"] for a in answers] == ["MISS", "HIT"]
    assert [a.headers["x-llmapi-model"] for a in answers] == ["backup", "backup"]
    assert len(healthy.requests) == 1


async def test_a_bad_request_does_not_fall_back(
    tmp_path: Path, replicas: tuple[RecordingUpstream, RecordingUpstream]
) -> None:
    rejecting, backup = replicas
    rejecting.fail = 400
    backends = (_backend("primary", rejecting), _backend("backup", backup))
    async with in_process(tmp_path, *backends, fallbacks={"primary": ["backup"]}) as stack:
        response = await stack.client.post(CHAT, json=_body("primary"), headers=ADMIN_HEADERS)

    assert response.status_code == 400 and not backup.requests


@pytest.mark.parametrize(
    ("fallback", "problem"),
    [
        ("nowhere", "another configured model"),
        ("pooled", "another configured model"),
        ("minilm", "on an 'openai'"),
    ],
)
def test_fallbacks_must_name_other_openai_models_of_the_task(fallback: str, problem: str) -> None:
    models = [
        {
            "id": "pooled",
            "task": "text-generation",
            "backend": "openai",
            "options": {"base_url": "http://a/v1"},
            "fallbacks": [fallback],
        },
        {"id": "minilm", "task": "embedding", "backend": "sentence-transformers", "source": "x"},
    ]
    with pytest.raises((ConfigError, ValueError), match=problem):
        Settings(models=models)
