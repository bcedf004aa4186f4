"""The real default chat model answers, through a real `llmapi serve` and the openai SDK."""

from __future__ import annotations

import httpx
import openai
from tests.real_model import REAL_MODEL
from tests.servers import ADMIN_HEADERS, RunningServer

CAPITAL = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


def test_the_capital_of_france_is_paris(real_client: openai.OpenAI) -> None:
    reply = real_client.chat.completions.create(
        model=REAL_MODEL, messages=CAPITAL, temperature=0, max_tokens=24
    )
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"


def test_streamed_the_same(real_client: openai.OpenAI) -> None:
    stream = real_client.chat.completions.create(
        model=REAL_MODEL, messages=CAPITAL, temperature=0, max_tokens=24, stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert "Paris" in text


def test_the_model_list_says_what_the_model_is(real_server: RunningServer) -> None:
    models = httpx.get(f"{real_server.api_url}/models", headers=ADMIN_HEADERS, timeout=10).json()["data"]
    (model,) = models
    assert model["id"] == REAL_MODEL
    assert "SmolLM2-135M-Instruct" in model["description"]
    assert (model["family"], model["context_length"]) == ("llama", 8192)
    assert 130_000_000 < model["parameters"] < 140_000_000
    assert {"id", "object", "created", "owned_by"} <= model.keys()
