"""What a stored credential is granted: its role, and scopes narrowed to that role (never widened).

Stored data can drift from the code (a scope renamed, a role changed), so these functions narrow silently:
a name that is unknown, or beyond the role, grants nothing rather than failing the request.
"""

from __future__ import annotations

from collections.abc import Iterable

from llmapi.auth.scopes import ROLE_SCOPES, Scope
from llmapi.types import Role

_ROLES_BY_NAME: dict[str, Role] = {role: role for role in ROLE_SCOPES}
_SCOPE_NAMES: frozenset[str] = frozenset(scope.value for scope in Scope)


def role_named(name: str) -> Role | None:
    """The role called `name`, or None when there is no such role."""
    return _ROLES_BY_NAME.get(name)


def granted_scopes(role: Role, names: Iterable[str] | None) -> frozenset[Scope]:
    """The role's scopes, narrowed to `names` when given; unknown names and ones beyond the role drop."""
    allowed = ROLE_SCOPES[role]
    if names is None:
        return allowed
    return frozenset(Scope(name) for name in names if name in _SCOPE_NAMES) & allowed


def scope_string(scopes: Iterable[Scope]) -> str:
    """The RFC 6749 `scope` value: names separated by single spaces, in a stable order."""
    return " ".join(sorted(scope.value for scope in scopes))
