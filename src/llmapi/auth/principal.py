from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Literal

from llmapi.auth.scopes import Role, Scope

PrincipalKind = Literal["api_key", "oauth_client", "external", "anonymous"]


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Per-credential limits (enforced by the rate limiter); None means the role's default."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None

    @classmethod
    def from_mapping(cls, limits: Mapping[str, int | None]) -> RateLimits:
        return cls(**{f.name: limits.get(f.name) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and what they may do. Built by authentication, read by every route."""

    id: str
    kind: PrincipalKind
    name: str
    role: Role
    scopes: frozenset[Scope]
    rate_limits: RateLimits = field(default_factory=RateLimits)

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes
