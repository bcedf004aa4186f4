"""The response cache on one instance (in-process store): what is cached, for whom, and how it is bypassed."""

from __future__ import annotations

import time
import uuid

import httpx
import openai
from tests.api.keys import bearer, new_key
from tests.servers import RunningServer

TEXT_MODEL = "gpt2-124m-random"


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def post(
    server: RunningServer, key: str, path: str, body: dict[str, object], **headers: str
) -> httpx.Response:
    response = httpx.post(
        f"{server.base_url}{path}", json=body, headers={**bearer(key), **headers}, timeout=120
    )
    assert response.status_code == 200, response.text
    return response


def chat_body(**fields: object) -> dict[str, object]:
    return {
        "model": TEXT_MODEL,
        "messages": [{"role": "user", "content": unique("Tell me")}],
        "max_tokens": 8,
        "temperature": 0,
        **fields,
    }


def test_a_deterministic_request_is_a_miss_then_a_hit_with_the_same_answer(server: RunningServer) -> None:
    key = new_key(server)
    body = chat_body()

    miss = post(server, key, "/v1/chat/completions", body)
    hit = post(server, key, "/v1/chat/completions", body)

    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert hit.json()["choices"] == miss.json()["choices"]
    assert hit.json()["usage"] == miss.json()["usage"]
    assert hit.json()["id"] != miss.json()["id"]


def test_the_key_is_the_meaning_of_the_request_not_its_bytes(server: RunningServer) -> None:
    key = new_key(server)
    body = chat_body()
    post(server, key, "/v1/chat/completions", body)

    reordered = dict(reversed(list(body.items())))
    renamed = {**{k: v for k, v in body.items() if k != "max_tokens"}, "max_completion_tokens": 8}
    other_user = {**body, "user": "someone"}
    longer = {**body, "max_tokens": 9}

    assert post(server, key, "/v1/chat/completions", reordered).headers["x-cache"] == "HIT"
    assert post(server, key, "/v1/chat/completions", renamed).headers["x-cache"] == "HIT"
    assert post(server, key, "/v1/chat/completions", other_user).headers["x-cache"] == "HIT"
    assert post(server, key, "/v1/chat/completions", longer).headers["x-cache"] == "MISS"


def test_sampled_requests_are_not_cached(server: RunningServer) -> None:
    key = new_key(server)
    body = chat_body(temperature=1.0)

    responses = [post(server, key, "/v1/chat/completions", body) for _ in range(2)]

    assert all("x-cache" not in r.headers for r in responses)
    seeded = chat_body(temperature=1.0, seed=5)
    assert post(server, key, "/v1/chat/completions", seeded).headers["x-cache"] == "MISS"
    assert post(server, key, "/v1/chat/completions", seeded).headers["x-cache"] == "HIT"


def test_no_cache_skips_the_read_and_no_store_the_write(server: RunningServer) -> None:
    key = new_key(server)
    body = chat_body()

    unstored = post(server, key, "/v1/chat/completions", body, **{"Cache-Control": "no-store"})
    after_no_store = post(server, key, "/v1/chat/completions", body)
    unread = post(server, key, "/v1/chat/completions", body, **{"Cache-Control": "no-cache"})

    assert unstored.headers["x-cache"] == "MISS"
    assert after_no_store.headers["x-cache"] == "MISS"
    assert unread.headers["x-cache"] == "MISS"
    assert post(server, key, "/v1/chat/completions", body).headers["x-cache"] == "HIT"


def test_tenants_do_not_share_entries(server: RunningServer) -> None:
    alice, bob = new_key(server), new_key(server)
    body = chat_body()

    post(server, alice, "/v1/chat/completions", body)

    assert post(server, bob, "/v1/chat/completions", body).headers["x-cache"] == "MISS"
    assert post(server, alice, "/v1/chat/completions", body).headers["x-cache"] == "HIT"


def test_a_streaming_request_is_answered_from_the_cache_as_a_stream(server: RunningServer) -> None:
    key = new_key(server)
    client = openai.OpenAI(base_url=server.api_url, api_key=key, max_retries=0, timeout=120)
    content = unique("Stream")

    def ask(stream: bool) -> tuple[str, str]:
        raw = client.chat.completions.with_raw_response.create(
            model=TEXT_MODEL,
            messages=[{"role": "user", "content": content}],
            max_tokens=10,
            temperature=0,
            stream=stream,
            **({"stream_options": {"include_usage": True}} if stream else {}),  # type: ignore[arg-type]
        )
        parsed = raw.parse()
        if not stream:
            return raw.headers["x-cache"], parsed.choices[0].message.content or ""  # type: ignore[union-attr]
        chunks = list(parsed)  # type: ignore[call-overload]
        assert chunks[-1].usage is not None and chunks[-1].choices == []
        assert sum(1 for c in chunks for choice in c.choices if choice.finish_reason) == 1
        return raw.headers["x-cache"], "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    streamed_miss = ask(stream=True)
    whole_hit = ask(stream=False)
    streamed_hit = ask(stream=True)

    assert (streamed_miss[0], whole_hit[0], streamed_hit[0]) == ("MISS", "HIT", "HIT")
    assert streamed_miss[1] == whole_hit[1] == streamed_hit[1]


def test_completions_and_generate_are_cached(server: RunningServer) -> None:
    key = new_key(server)
    completion = {"model": TEXT_MODEL, "prompt": unique("def"), "max_tokens": 6, "temperature": 0}
    generation = {"prompt": unique("Once"), "max_tokens": 6, "seed": 3}

    for path, body in (("/v1/completions", completion), ("/v1/generate/text", generation)):
        miss, hit = (post(server, key, path, body) for _ in range(2))
        assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT"), path


def test_embeddings_are_cached_per_model_and_input_whatever_the_encoding(server: RunningServer) -> None:
    key = new_key(server)
    text = unique("embed me")

    as_floats = post(server, key, "/v1/embeddings", {"model": "all-MiniLM-L6-v2", "input": text})
    as_base64 = post(
        server,
        key,
        "/v1/embeddings",
        {"model": "all-MiniLM-L6-v2", "input": text, "encoding_format": "base64"},
    )

    assert (as_floats.headers["x-cache"], as_base64.headers["x-cache"]) == ("MISS", "HIT")
    assert isinstance(as_base64.json()["data"][0]["embedding"], str)


def test_cached_answers_count_as_requests_but_not_as_generated_tokens(server: RunningServer) -> None:
    key = new_key(server)
    body = chat_body()
    miss = post(server, key, "/v1/chat/completions", body)
    post(server, key, "/v1/chat/completions", body)

    rows: list[dict[str, int]] = []
    for _ in range(100):  # usage is written in batches, about once a second
        rows = httpx.get(f"{server.base_url}/v1/usage", headers=bearer(key), timeout=30).json()["data"]
        if rows and rows[0]["requests"] == 2:
            break
        time.sleep(0.1)
    [row] = rows

    assert (row["requests"], row["cached_requests"]) == (2, 1)
    assert row["completion_tokens"] == miss.json()["usage"]["completion_tokens"]
