"""Sampling semantics as OpenAI documents them, over HTTP against a running server."""

from __future__ import annotations

import httpx
import pytest
from tests.servers import ADMIN_HEADERS, RunningServer

TEXT_MODEL = "gpt2-124m-random"


@pytest.fixture(scope="module")
def http(server: RunningServer) -> httpx.Client:
    # These tests are about the engine, so the response cache must neither answer nor remember.
    headers = {**ADMIN_HEADERS, "Cache-Control": "no-cache, no-store"}
    return httpx.Client(base_url=server.base_url, timeout=120, headers=headers)


def complete(http: httpx.Client, **fields: object) -> dict[str, object]:
    response = http.post("/v1/completions", json={"model": TEXT_MODEL, "prompt": "import os\n", **fields})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def texts(body: dict[str, object]) -> list[str]:
    return [choice["text"] for choice in body["choices"]]  # type: ignore[attr-defined, index]


def test_temperature_zero_is_greedy_and_deterministic(http: httpx.Client) -> None:
    first = texts(complete(http, max_tokens=12, temperature=0))
    assert first == texts(complete(http, max_tokens=12, temperature=0))
    assert first == texts(complete(http, max_tokens=12, temperature=0, seed=123, top_p=0.5))


def test_a_seed_reproduces_a_sample(http: httpx.Client) -> None:
    one = texts(complete(http, max_tokens=12, temperature=1.0, seed=42))
    assert one == texts(complete(http, max_tokens=12, temperature=1.0, seed=42))
    others = {tuple(texts(complete(http, max_tokens=12, temperature=1.0, seed=s))) for s in range(1, 5)}
    assert len(others) > 1


def test_n_choices_are_numbered_and_differ_when_sampled(http: httpx.Client) -> None:
    body = complete(http, max_tokens=10, temperature=1.0, seed=7, n=3)
    choices = body["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]  # type: ignore[attr-defined, index]
    assert len(set(texts(body))) > 1
    usage = body["usage"]
    assert usage["completion_tokens"] == 30  # type: ignore[index]


def test_stop_sequence_ends_the_text_before_it(http: httpx.Client) -> None:
    full = texts(complete(http, max_tokens=20, temperature=0))[0]
    stop = full[5:8]
    if not stop.strip():
        pytest.skip("greedy text has no usable stop window")
    body = complete(http, max_tokens=20, temperature=0, stop=[stop])
    text = texts(body)[0]
    assert text == full[: full.index(stop)]
    assert body["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]


def test_max_tokens_gives_finish_reason_length(http: httpx.Client) -> None:
    body = complete(http, max_tokens=3, temperature=0)
    assert body["choices"][0]["finish_reason"] == "length"  # type: ignore[index]
    assert body["usage"]["completion_tokens"] == 3  # type: ignore[index]


def test_max_completion_tokens_is_honoured_for_chat(http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions",
        json={
            "model": TEXT_MODEL,
            "messages": [{"role": "user", "content": "hi"}],
            "max_completion_tokens": 2,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] <= 2


def test_penalties_and_top_k_are_accepted(http: httpx.Client) -> None:
    body = complete(http, max_tokens=8, presence_penalty=1.5, frequency_penalty=1.0, top_k=5, seed=1)
    assert body["usage"]["completion_tokens"] > 0  # type: ignore[index]


def test_generate_text_task(http: httpx.Client) -> None:
    response = http.post(
        "/v1/generate/text", json={"prompt": "Once upon a time", "max_tokens": 5, "temperature": 0}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == TEXT_MODEL
    assert isinstance(body["output"], str)
    assert body["usage"]["completion_tokens"] == 5


def test_generate_text_stream(http: httpx.Client) -> None:
    with http.stream(
        "POST",
        "/v1/generate/text",
        json={"prompt": "Once", "max_tokens": 4, "temperature": 0, "stream": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert len(lines) >= 2


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I love this wonderful product, it works great!", "positive"),
        ("This is terrible, I hate it and it broke.", "negative"),
    ],
)
def test_sentiment_of_plain_sentences(http: httpx.Client, text: str, label: str) -> None:
    response = http.post("/v1/analyze/sentiment", json={"text": text})
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["label"] == label
    assert set(result["scores"]) == {"negative", "neutral", "positive"}


def test_sentiment_of_several_texts_keeps_their_order(http: httpx.Client) -> None:
    response = http.post("/v1/analyze/sentiment", json={"texts": ["I am happy", "I am sad", "The sky"]})
    assert [r["label"] for r in response.json()["results"]] == ["positive", "negative", "neutral"]


def test_sentiment_needs_text_or_texts(http: httpx.Client) -> None:
    response = http.post("/v1/analyze/sentiment", json={})
    assert response.status_code == 400
    assert "text" in response.json()["error"]["message"]
