from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from llmapi.auth.scopes import Scope
from llmapi.types import RateLimits, Role

PrincipalKind = Literal["api_key", "oauth_client", "external", "anonymous"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and what they may do. Built by authentication, read by every route."""

    id: str
    kind: PrincipalKind
    name: str
    role: Role
    scopes: frozenset[Scope]
    rate_limits: RateLimits = field(default_factory=RateLimits)  # its own; None falls back to the role's

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes
