"""OpenAICompatOptions: one upstream or a pool of replicas, and the circuit breaker's options."""

from __future__ import annotations

from typing import Any

import pytest
from yarl import URL

from llmapi.backends.remote.options import OpenAICompatOptions
from llmapi.config import ConfigError
from llmapi.model_specs import ModelSpec


def options(**values: Any) -> OpenAICompatOptions:
    spec = ModelSpec(id="m", task="text-generation", backend="openai", options=values)
    return OpenAICompatOptions.from_spec(spec, environ={})


def test_one_url_is_a_pool_of_one() -> None:
    one = options(base_url="http://h:9/v1/")

    assert one.base_urls == (URL("http://h:9/v1"),)
    assert (one.base_url, one.origin, one.origins) == (URL("http://h:9/v1"), "http://h:9", ("http://h:9",))
    assert (one.breaker_failures, one.breaker_reset_s) == (3, 5.0)


def test_a_list_of_urls_is_a_pool_of_replicas() -> None:
    pool = options(
        base_url=["http://a:8001/v1", "https://user:secret@b/v1/"], breaker_failures=1, breaker_reset_s=0.5
    )

    assert pool.base_urls == (URL("http://a:8001/v1"), URL("https://user:secret@b/v1"))
    assert pool.origins == ("http://a:8001", "https://b")
    assert (pool.base_url, pool.origin) == (URL("http://a:8001/v1"), "http://a:8001")
    assert str(pool.endpoint("completions")) == "http://a:8001/v1/completions"
    assert (pool.breaker_failures, pool.breaker_reset_s) == (1, 0.5)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"base_url": ["http://a/v1", "ftp://b/v1"]}, r"options.base_url\[1\] 'ftp://b/v1' must be an http"),
        ({"base_url": ["http://a/v1", 8002]}, r"options.base_url\[1\] must be the URL"),
        ({"base_url": ["http://a/v1", "http://b/v1?x=1"]}, r"options.base_url\[1\] .* query or fragment"),
        ({"base_url": {"url": "http://a/v1"}}, "options.base_url must be the URL .* or a list"),
        (
            {"base_url": ["http://a/v1", "http://b/v1", "http://A:80/v1/"]},
            r"options.base_url\[2\] repeats options.base_url\[0\]; list each replica once",
        ),
        ({"base_url": "http://a/v1", "breaker_failures": 0}, "options.breaker_failures must be a whole"),
        ({"base_url": "http://a/v1", "breaker_reset_s": -1}, "options.breaker_reset_s must be a positive"),
    ],
)
def test_invalid_pools_are_refused(values: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        options(**values)


def test_duplicates_name_no_credentials() -> None:
    with pytest.raises(ConfigError) as caught:
        options(base_url=["http://u:secret@a/v1", "http://u:secret@a/v1"])
    assert "secret" not in str(caught.value)


def test_replicas_on_one_host_with_different_paths_are_distinct() -> None:
    assert len(options(base_url=["http://a/one/v1", "http://a/two/v1"]).base_urls) == 2
