"""The scopes a route can demand and the roles that bundle them: the one table, also in the README."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from llmapi.types import Role


class Scope(StrEnum):
    MODELS_READ = "models:read"
    CHAT = "chat"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    GENERATE = "generate"
    ANALYZE = "analyze"
    JOBS = "jobs"
    WEBHOOKS = "webhooks"
    USAGE_READ = "usage:read"
    ADMIN = "admin"


INFERENCE_SCOPES = frozenset({Scope.CHAT, Scope.COMPLETIONS, Scope.EMBEDDINGS, Scope.GENERATE, Scope.ANALYZE})

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    "admin": frozenset(Scope),
    "developer": frozenset(Scope) - {Scope.ADMIN},
    "service": INFERENCE_SCOPES | {Scope.MODELS_READ},
}


class ScopeError(ValueError):
    """Scopes asked for that do not exist or that the role does not grant."""


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    known = {scope.value for scope in Scope}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ScopeError(f"unknown scopes {unknown}; the scopes are {sorted(known)}")
    return frozenset(Scope(name) for name in names)


def scopes_for(role: Role, narrowed_to: Iterable[str] | None = None) -> frozenset[Scope]:
    """A credential's scopes: its role's, narrowed to `narrowed_to` when given (never widened)."""
    granted = ROLE_SCOPES[role]
    if narrowed_to is None:
        return granted
    asked = parse_scopes(narrowed_to)
    beyond = sorted(asked - granted)
    if beyond:
        raise ScopeError(f"the role '{role}' does not grant {beyond}")
    return asked
