"""Settings: environment variables prefixed LLMAPI_, plus an optional models file (YAML or TOML).

Nothing is read at import time: call `load_settings()` (the CLI does) or build `Settings(...)` directly.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from llmapi.model_specs import ModelSpec, check_fallbacks, default_models
from llmapi.types import ModelCode, Quantization, RateLimits, Role

# What a browser sends in `Origin`: a scheme and a host, perhaps a port; no path.
_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s]+$")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says what to fix."""


class EngineSettings(BaseModel):
    """The in-process engine: precision, threads, the batch it may form and its speed levers.

    `quantization: int8` stores linear layers' weights as int8, one scale per output row, `int4` as 4-bit
    integers with a scale and offset per group of 32 inputs (the output head stays as loaded); both are
    weight-only (activations are not quantized; the products run in bfloat16) and logits stay close, not
    identical, to the loaded model's (bench/engine_levers/quant_accuracy.md); `compile` runs the model
    through torch.compile;
    `max_prefill_tokens` bounds the prompt tokens one step reads, so a long prompt is prefilled in chunks
    while running streams keep decoding;
    `model_code: transformers` runs transformers' modules even for a family the engine has its own code for;
    `process` runs the engine in its own process (the event loop and the model stop sharing one interpreter);
    `prefix_caching` lets a prompt start after the longest prefix it shares with a cached one.
    """

    model_config = ConfigDict(extra="forbid")

    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    threads: int | None = Field(default=None, ge=1, le=512)
    max_batch_size: int = Field(default=64, ge=1, le=1024)
    max_waiting: int = Field(default=256, ge=1, le=100_000)
    quantization: Quantization = "none"
    compile: bool = False
    max_prefill_tokens: int = Field(default=512, ge=16, le=65_536)
    model_code: ModelCode = "auto"
    process: bool = False
    prefix_caching: bool = True


class OIDCSettings(BaseModel):
    """An external identity provider whose access tokens this server accepts."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(min_length=1)
    jwks_url: str = Field(min_length=1, pattern=r"^https?://")
    audience: str = Field(min_length=1)
    scope_claim: str = "scope"
    scope_map: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Provider scope or group names to this server's scopes; unmapped names are ignored.",
    )
    role: Role = "service"


class ModelLimits(BaseModel):
    """Limits on one model, per credential, on top of the credential's own."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


_INFERENCE_DEFAULTS = {"requests_per_minute": 600, "tokens_per_minute": 200_000, "max_concurrent": 32}
ROLE_LIMIT_DEFAULTS: dict[Role, dict[str, int]] = {
    "admin": {},
    "developer": _INFERENCE_DEFAULTS,
    "service": _INFERENCE_DEFAULTS,
}


class LimitSettings(BaseModel):
    """Rate limits, concurrency limits and token budgets per credential, and the per-instance load guard.

    With `LLMAPI_REDIS_URL` the counters are shared by every instance; without it each instance counts alone.
    """

    model_config = ConfigDict(extra="forbid")

    admin: RateLimits
    developer: RateLimits
    service: RateLimits
    models: dict[str, ModelLimits] = Field(default_factory=dict)
    on_redis_failure: Literal["open", "closed"] = Field(
        default="open",
        description="open: keep serving with per-instance limits while Redis is down; closed: answer 503.",
    )
    max_inflight_requests: int = Field(
        default=256, ge=1, le=1_000_000, description="Per instance: more inference requests at once get 503."
    )
    lease_ttl_seconds: float = Field(
        default=900.0, ge=1.0, description="A concurrency slot held by a crashed instance lapses after this."
    )

    @model_validator(mode="before")
    @classmethod
    def _over_role_defaults(cls, data: Any) -> Any:
        """Setting one limit of a role keeps the role's other defaults."""
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for role, defaults in ROLE_LIMIT_DEFAULTS.items():
            given = merged.get(role, {})
            merged[role] = {**defaults, **given} if isinstance(given, dict) else given
        return merged

    def for_role(self, role: Role) -> RateLimits:
        """The role's limits (None is unlimited); a credential's own limits override them."""
        limits: RateLimits = getattr(self, role)
        return limits


class CacheSettings(BaseModel):
    """The response cache for chat, completions, generate and embeddings (Redis when configured)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    ttl_seconds: float = Field(default=3600.0, gt=0.0, le=30 * 86_400)
    max_entry_bytes: int = Field(default=1 << 20, ge=1_024)
    max_bytes: int = Field(default=64 << 20, ge=1_024, description="The in-memory store's size, in bytes.")
    shared: bool = Field(
        default=False, description="One namespace for every credential; off: each credential has its own."
    )
    deterministic_only: bool = Field(
        default=True, description="Cache only requests with temperature 0 or a seed."
    )


class ServerSettings(BaseModel):
    """How long a client may take and how much it may send before a request is the app's, and how many
    connections one instance holds. Behind a load balancer (README): keep-alive longer than the balancer's
    idle timeout; the balancer's own client timeouts and header limit at or below these."""

    model_config = ConfigDict(extra="forbid")

    header_timeout_seconds: float = Field(
        default=10.0, gt=0.0, le=300.0, description="A request head not whole by then gets 408."
    )
    body_timeout_seconds: float = Field(
        default=30.0, gt=0.0, le=3600.0, description="A body not whole this long after its head gets 408."
    )
    keep_alive_timeout_seconds: int = Field(
        default=5, ge=1, le=3600, description="An idle kept-alive connection is closed after this."
    )
    max_header_bytes: int = Field(
        default=32 << 10,
        ge=1_024,
        le=1 << 20,
        description="A request head (request line and headers) larger than this gets 431.",
    )
    max_connections: int = Field(
        default=1_024, ge=1, le=1_000_000, description="Requests past this many open connections get 503."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LLMAPI_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    models_file: Path | None = None
    models: list[ModelSpec] = Field(default_factory=default_models)
    model_cache: Path = Field(
        default=Path("~/.cache/llmapi/models"),
        description="Where GGUF models (the default chat model's included) are kept once converted.",
    )
    engine: EngineSettings = Field(default_factory=EngineSettings)
    default_max_tokens: int = Field(default=256, ge=1, le=1_000_000)
    max_body_bytes: int = Field(
        default=4 << 20, ge=1_024, description="Larger request bodies get 413, refused while they are read."
    )
    max_nesting_depth: int = Field(
        default=32, ge=4, le=512, description="Deeper JSON or XML request bodies get 400."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    auth: Literal["on", "off"] = "on"
    admin_key: SecretStr | None = Field(
        default=None, description="A bootstrap admin API key, 32+ characters."
    )
    database_url: str = "sqlite+aiosqlite:///llmapi.db"
    redis_url: str | None = None
    jwt_issuer: str = "llmapi"
    jwt_audience: str = "llmapi"
    access_token_ttl_seconds: int = Field(default=3600, ge=60, le=86_400)
    secret_key: SecretStr | None = Field(
        default=None,
        description="Encrypts the token signing keys in the database, 32+ characters; the same on every "
        "instance. Required with PostgreSQL; with SQLite, a key file is made when unset.",
    )
    secret_key_previous: SecretStr | None = Field(
        default=None,
        description="The secret key before a rotation: it still decrypts, until a start re-encrypts.",
    )
    secret_key_file: Path | None = Field(
        default=None,
        description="The secret key's file when LLMAPI_SECRET_KEY is unset; default: beside the SQLite "
        "database (llmapi.secret for llmapi.db), made with mode 0600 if missing.",
    )
    auth_cache_ttl_seconds: float = Field(default=30.0, ge=0.0, le=3600.0)
    oidc: OIDCSettings | None = None
    limits: LimitSettings = Field(default_factory=lambda: LimitSettings.model_validate({}))
    cache: CacheSettings = Field(default_factory=CacheSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    docs: Literal["on", "off"] = Field(
        default="off", description="on: serve /docs, /redoc and /openapi.json (the admin API included)."
    )
    # NoDecode: pydantic-settings would read a list from the environment as JSON only; `_origins` takes
    # JSON or comma-separated.
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (CORS), e.g. https://app.example.com; "
        "none by default. `*` allows any.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        """A JSON list (`["https://a.example"]`) or comma-separated (`https://a.example,https://b.example`)."""
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [origin.strip() for origin in value.split(",") if origin.strip()]

    @field_validator("cors_origins")
    @classmethod
    def _bare_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port] with no path or trailing "
                    "slash, as browsers send it (https://app.example.com), or * for any"
                )
        return value

    @field_validator(
        "admin_key", "redis_url", "secret_key", "secret_key_previous", "secret_key_file", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("admin_key")
    @classmethod
    def _strong_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError(
                "LLMAPI_ADMIN_KEY must be at least 32 characters; make one with `openssl rand -hex 32`"
            )
        return value

    @field_validator("secret_key", "secret_key_previous")
    @classmethod
    def _strong_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError(
                "the secret key must be at least 32 characters; make one with `openssl rand -base64 48`"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """Accept the usual spellings and pick the async driver this server uses."""
        for plain, asynchronous in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if value.startswith(plain):
                return asynchronous + value.removeprefix(plain)
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError(
                "database_url must be a PostgreSQL or SQLite URL, e.g. postgresql://user@host/db"
            )
        return value

    @model_validator(mode="after")
    def _models_from_file(self) -> Settings:
        if self.models_file is not None:
            self.models = read_models_file(self.models_file)
        ids = [m.id for m in self.models]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"model ids must be unique; these appear twice: {duplicates}")
        if not self.models:
            raise ValueError("no models are configured; declare at least one in the models file")
        check_fallbacks(self.models)
        return self


def read_models_file(path: Path) -> list[ModelSpec]:
    """Read `models: [{id, task, backend, source, options}, ...]` from a YAML or TOML file."""
    if not path.is_file():
        raise ConfigError(f"models file {path} does not exist; pass an existing YAML or TOML file")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"models file {path} is not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise ConfigError(f"models file {path} must hold a top-level 'models' list")
    try:
        return [ModelSpec.model_validate(entry) for entry in data["models"]]
    except ValidationError as exc:
        raise ConfigError(f"models file {path}: {_first_error(exc)}") from exc


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment and overrides, turning validation errors into one message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
