"""Making API keys through the admin API, and clients that use them."""

from __future__ import annotations

import httpx
from tests.servers import ADMIN_HEADERS, RunningServer


def new_key(server: RunningServer, **fields: object) -> str:
    """A new key's secret; `fields` as POST /v1/admin/keys takes them (role, scopes, rate_limits, ...)."""
    response = httpx.post(
        f"{server.base_url}/v1/admin/keys", json={"name": "test", **fields}, headers=ADMIN_HEADERS, timeout=30
    )
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
