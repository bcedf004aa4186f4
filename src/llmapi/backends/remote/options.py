"""The options of a model served by a remote OpenAI-compatible engine, validated once at construction."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from yarl import URL

from llmapi.config import ConfigError
from llmapi.model_specs import ModelSpec

_KNOWN = frozenset(
    {
        "base_url",
        "api_key",
        "api_key_env",
        "upstream_model",
        "timeout",
        "connect_timeout",
        "context_length",
        "max_retries",
        "max_connections",
        "owned_by",
        "breaker_failures",
        "breaker_reset_s",
        "responses_api",
    }
)


@dataclass(frozen=True, slots=True)
class OpenAICompatOptions:
    base_urls: tuple[URL, ...]
    upstream_model: str
    timeout: float = 600.0
    connect_timeout: float = 5.0
    context_length: int | None = None
    max_retries: int = 2
    max_connections: int = 100
    owned_by: str = "remote"
    breaker_failures: int = 3
    breaker_reset_s: float = 5.0
    responses_api: bool = False
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.base_urls:
            raise ValueError("OpenAICompatOptions needs at least one base URL")

    @property
    def base_url(self) -> URL:
        """The first replica's base URL."""
        return self.base_urls[0]

    @property
    def origins(self) -> tuple[str, ...]:
        """Scheme, host and port of each replica: what messages name (never a path or credentials)."""
        return tuple(str(url.origin()) for url in self.base_urls)

    @property
    def origin(self) -> str:
        """The first replica's origin."""
        return self.origins[0]

    def endpoint(self, path: str) -> URL:
        return URL(f"{self.base_url}/{path}")

    @classmethod
    def from_spec(cls, spec: ModelSpec, environ: Mapping[str, str] = os.environ) -> OpenAICompatOptions:
        reader = _Reader(spec)
        unknown = sorted(set(spec.options) - _KNOWN)
        if unknown:
            raise reader.error(f"unknown options {unknown} for an 'openai' backend; known: {sorted(_KNOWN)}")
        return cls(
            base_urls=reader.base_urls(),
            upstream_model=reader.text("upstream_model") or spec.source or spec.id,
            timeout=reader.seconds("timeout", 600.0),
            connect_timeout=reader.seconds("connect_timeout", 5.0),
            context_length=reader.optional_count("context_length", minimum=1),
            max_retries=reader.count("max_retries", 2, minimum=0),
            max_connections=reader.count("max_connections", 100, minimum=1),
            owned_by=reader.text("owned_by") or "remote",
            breaker_failures=reader.count("breaker_failures", 3, minimum=1),
            breaker_reset_s=reader.seconds("breaker_reset_s", 5.0),
            responses_api=reader.flag("responses_api"),
            api_key=reader.api_key(environ),
        )


class _Reader:
    def __init__(self, spec: ModelSpec) -> None:
        self._id = spec.id
        self._options: dict[str, Any] = spec.options

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"model '{self._id}': {message}")

    def base_urls(self) -> tuple[URL, ...]:
        """One URL, or a list of the URLs of replicas serving the same model."""
        value = self._options.get("base_url")
        if isinstance(value, str) and value.strip():
            return (self._url("options.base_url", value),)
        if not isinstance(value, list) or not value:
            raise self.error(
                "options.base_url must be the URL of the upstream's API, e.g. http://127.0.0.1:8001/v1, "
                "or a list of the URLs of its replicas"
            )
        urls = tuple(self._url(f"options.base_url[{i}]", item) for i, item in enumerate(value))
        places = [(url.scheme, url.host, url.port, url.path) for url in urls]
        for i, place in enumerate(places):
            if place in places[:i]:
                first = places.index(place)
                raise self.error(
                    f"options.base_url[{i}] repeats options.base_url[{first}]; list each replica once"
                )
        return urls

    def _url(self, key: str, value: object) -> URL:
        example = "e.g. http://127.0.0.1:8001/v1"
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{key} must be the URL of the upstream's API, {example}")
        try:
            url = URL(value.strip().rstrip("/"))
        except ValueError as exc:
            raise self.error(f"{key} {value!r} is not a URL ({exc}); {example}") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise self.error(f"{key} {value!r} must be an http(s) URL with a host, {example}")
        if url.query_string or url.fragment:
            raise self.error(f"{key} {value!r} must not have a query or fragment, {example}")
        return url

    def text(self, key: str) -> str | None:
        value = self._options.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"options.{key} must be a non-empty string, got {value!r}")
        return value.strip()

    def flag(self, key: str) -> bool:
        value = self._options.get(key, False)
        if not isinstance(value, bool):
            raise self.error(f"options.{key} must be true or false, got {value!r}")
        return value

    def seconds(self, key: str, default: float) -> float:
        value = self._options.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise self.error(f"options.{key} must be a positive number of seconds, got {value!r}")
        return float(value)

    def optional_count(self, key: str, *, minimum: int) -> int | None:
        return None if self._options.get(key) is None else self.count(key, minimum, minimum=minimum)

    def count(self, key: str, default: int, *, minimum: int) -> int:
        value = self._options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(f"options.{key} must be a whole number of at least {minimum}, got {value!r}")
        return value

    def api_key(self, environ: Mapping[str, str]) -> str | None:
        key, env = self._options.get("api_key"), self._options.get("api_key_env")
        if key is not None and env is not None:
            raise self.error("set options.api_key or options.api_key_env, not both")
        if key is not None:
            if not isinstance(key, str) or not key.strip():
                raise self.error("options.api_key must be a non-empty string")
            return key.strip()
        if env is None:
            return None
        if not isinstance(env, str) or not env.strip():
            raise self.error(f"options.api_key_env must name an environment variable, got {env!r}")
        value = environ.get(env.strip(), "").strip()
        if not value:
            raise self.error(
                f"options.api_key_env names the environment variable {env.strip()}, which is not set "
                "or empty; export it before starting the server, "
                "or remove api_key_env if the upstream needs no key"
            )
        return value
