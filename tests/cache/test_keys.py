from __future__ import annotations

from llmapi.cache.keys import cache_key

PAYLOAD = {"model": "gpt2", "temperature": 0.0, "messages": [{"role": "user", "content": "hi"}], "stop": None}


def test_the_key_shows_the_kind_and_a_sha256_hex() -> None:
    key = cache_key("tenant-a", "chat", PAYLOAD)
    prefix, digest = key.rsplit(":", 1)
    assert prefix == "llmapi:cache:chat"
    assert len(digest) == 64
    assert int(digest, 16) >= 0


def test_key_order_does_not_matter_at_any_depth() -> None:
    reordered = {
        "stop": None,
        "messages": [{"content": "hi", "role": "user"}],
        "temperature": 0.0,
        "model": "gpt2",
    }
    assert cache_key("tenant-a", "chat", reordered) == cache_key("tenant-a", "chat", PAYLOAD)


def test_an_integral_float_and_its_int_give_one_key() -> None:
    as_floats = {"n": 1.0, "nested": {"max_tokens": 16.0, "values": [2.0, 0.5]}}
    as_ints = {"n": 1, "nested": {"max_tokens": 16, "values": [2, 0.5]}}
    assert cache_key("ns", "completion", as_floats) == cache_key("ns", "completion", as_ints)


def test_none_is_kept() -> None:
    assert cache_key("ns", "chat", {"stop": None}) != cache_key("ns", "chat", {})


def test_a_bool_is_not_a_number() -> None:
    assert cache_key("ns", "chat", {"echo": True}) != cache_key("ns", "chat", {"echo": 1})


def test_a_different_namespace_gives_a_different_key() -> None:
    assert cache_key("tenant-a", "chat", PAYLOAD) != cache_key("tenant-b", "chat", PAYLOAD)


def test_a_different_kind_gives_a_different_key() -> None:
    chat = cache_key("ns", "chat", PAYLOAD).rsplit(":", 1)[1]
    embedding = cache_key("ns", "embedding", PAYLOAD).rsplit(":", 1)[1]
    assert chat != embedding


def test_a_different_value_gives_a_different_key() -> None:
    assert cache_key("ns", "chat", PAYLOAD) != cache_key("ns", "chat", {**PAYLOAD, "temperature": 0.5})


def test_the_namespace_is_not_visible_in_the_key() -> None:
    namespace = "principal-7f3a9c"
    assert namespace not in cache_key(namespace, "chat", PAYLOAD)


def test_a_huge_integral_float_does_not_break_the_key() -> None:
    assert cache_key("ns", "chat", {"x": 1e300}) != cache_key("ns", "chat", {"x": 1e299})
