"""Explicit null for the fields OpenAI lets clients send as null, over HTTP against a running server."""

from __future__ import annotations

import httpx
import pytest
from tests.servers import ADMIN_HEADERS, RunningServer

TEXT_MODEL = "gpt2-124m-random"


@pytest.fixture(scope="module")
def http(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=120, headers=ADMIN_HEADERS)


def test_chat_with_null_n_and_stream_is_one_whole_answer(http: httpx.Client) -> None:
    body = {
        "model": TEXT_MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 4,
        **dict.fromkeys(["n", "stream", "stream_options", "temperature", "logprobs", "seed", "stop", "user"]),
    }
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert len(response.json()["choices"]) == 1


def test_completion_with_null_echo_n_stream_and_prompt(http: httpx.Client) -> None:
    body = {"model": TEXT_MODEL, "max_tokens": 4, "temperature": 0}
    nulls = dict.fromkeys(["prompt", "echo", "n", "stream", "suffix", "best_of", "logit_bias", "logprobs"])
    response = http.post("/v1/completions", json={**body, **nulls})
    assert response.status_code == 200, response.text
    (choice,) = response.json()["choices"]
    assert (
        choice["text"]
        == http.post("/v1/completions", json={**body, "prompt": ""}).json()["choices"][0]["text"]
    )


def test_null_max_tokens_of_a_completion_is_its_default_of_16(http: httpx.Client) -> None:
    body = {"model": TEXT_MODEL, "prompt": "def", "max_tokens": None, "ignore_eos": True}
    response = http.post("/v1/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == 16


def test_generate_with_null_stream(http: httpx.Client) -> None:
    response = http.post("/v1/generate/text", json={"prompt": "x", "max_tokens": 2, "stream": None})
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "text.generation"


def test_null_model_or_messages_is_still_a_400(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={"model": TEXT_MODEL, "messages": None})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"
