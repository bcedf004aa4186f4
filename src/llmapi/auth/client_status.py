"""Whether the OAuth client behind one of our access tokens is still active: looked up, cached briefly.

A signature proves the token was issued, not that its client may still use it: revoking a client must end
its tokens too. So a token's client (`sub`) is looked up, and the answer cached for `cache_ttl` seconds (a
revoked or unknown client for `negative_cache_ttl`, as API keys are). `evict(client_id)` forgets one client
("*": every client), and a lookup that raced with an eviction is not cached, so a revocation is seen at once
after `evict`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from llmapi.auth.oauth import OAuthClientLookup
from llmapi.auth.ttl_cache import TTLCache
from llmapi.errors import AuthenticationError

EVERY_CLIENT = "*"


class ClientStatus:
    def __init__(
        self,
        clients: OAuthClientLookup,
        *,
        cache_ttl: float,
        negative_cache_ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self._cache_ttl = cache_ttl
        self._negative_cache_ttl = min(negative_cache_ttl, cache_ttl)
        self._active: TTLCache[str, bool] = TTLCache(max_entries=max_entries, clock=clock)
        self._evictions = 0

    async def require_active(self, client_id: str, *, use_cache: bool = True) -> None:
        """Return when the client exists and is not revoked; AuthenticationError otherwise."""
        active = self._active.get(client_id) if use_cache else None
        if active is None:
            evictions_before = self._evictions
            active = await self._clients.by_id_active(client_id) is not None
            if use_cache and self._evictions == evictions_before:
                ttl = self._cache_ttl if active else self._negative_cache_ttl
                self._active.put(client_id, active, ttl)
        if not active:
            raise AuthenticationError(
                "The access token was refused: its OAuth client was revoked or no longer exists; "
                "ask an administrator for a new client.",
                code="client_revoked",
            )

    def evict(self, client_id: str) -> None:
        """Forget what is cached about one client, or about every client with "*"."""
        self._evictions += 1
        if client_id == EVERY_CLIENT:
            self._active.clear()
        else:
            self._active.discard(client_id)
