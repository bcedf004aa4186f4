"""The real default chat model answers, through a real `llmapi serve` and the openai SDK."""

from __future__ import annotations

import httpx
import openai
from tests.api.inprocess import InProcess
from tests.real_model import REAL_MODEL
from tests.servers import ADMIN_HEADERS, RunningServer

CAPITAL = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


def test_the_capital_of_france_is_paris(real_client: openai.OpenAI) -> None:
    reply = real_client.chat.completions.create(
        model=REAL_MODEL, messages=CAPITAL, temperature=0, max_tokens=24
    )
    assert reply.choices[0].message.content == "The capital of France is Paris."
    assert reply.choices[0].finish_reason == "stop"


def test_streamed_the_same(real_client: openai.OpenAI) -> None:
    stream = real_client.chat.completions.create(
        model=REAL_MODEL, messages=CAPITAL, temperature=0, max_tokens=24, stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "The capital of France is Paris."


def test_the_model_list_says_what_the_model_is(real_server: RunningServer) -> None:
    models = httpx.get(f"{real_server.api_url}/models", headers=ADMIN_HEADERS, timeout=10).json()["data"]
    (model,) = models
    assert model["id"] == REAL_MODEL
    assert "SmolLM2-135M-Instruct" in model["description"]
    assert (model["family"], model["context_length"]) == ("llama", 8192)
    assert 130_000_000 < model["parameters"] < 140_000_000
    assert {"id", "object", "created", "owned_by"} <= model.keys()


def test_every_test_model_says_what_it_is(server: RunningServer) -> None:
    models = httpx.get(f"{server.api_url}/models", headers=ADMIN_HEADERS, timeout=10).json()["data"]
    described = {model["id"]: model for model in models}
    assert "not meaningful" in described["gpt2-124m-random"]["description"]
    assert described["gpt2-124m-random"]["family"] == "gpt2"
    assert "384 dimensions" in described["all-MiniLM-L6-v2"]["description"]
    assert 20_000_000 < described["all-MiniLM-L6-v2"]["parameters"] < 25_000_000
    assert described["vader"]["family"] == "vader"


async def test_the_in_process_stack_answers_too(real_app: InProcess) -> None:
    body = {"model": REAL_MODEL, "messages": CAPITAL, "temperature": 0, "max_tokens": 24}
    response = await real_app.client.post("/v1/chat/completions", json=body, headers=ADMIN_HEADERS)
    assert response.status_code == 200, response.text
    assert "Paris" in response.json()["choices"][0]["message"]["content"]
