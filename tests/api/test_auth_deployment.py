"""Auth as deployed: two instances on one PostgreSQL and one Redis, first start, auth off, the CLI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.api.keys import bearer
from tests.real_services import postgres_schema, two_instances_on_shared_services
from tests.servers import ADMIN_HEADERS, RunningServer, free_port, llmapi_server

SENTIMENT_ONLY = "models:\n  - {id: vader, task: sentiment, backend: vader}\n"


def _models(directory: Path) -> Path:
    path = directory / "models.yaml"
    path.write_text(SENTIMENT_ONLY)
    return path


@pytest.fixture(scope="module")
def two_instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, RunningServer]]:
    with two_instances_on_shared_services(tmp_path_factory, SENTIMENT_ONLY) as instances:
        yield instances


def test_a_key_revoked_on_one_instance_is_refused_by_the_other_within_a_second(
    two_instances: tuple[RunningServer, RunningServer],
) -> None:
    first, second = two_instances
    created = httpx.post(
        f"{first.base_url}/v1/admin/keys", json={"name": "shared"}, headers=ADMIN_HEADERS
    ).json()
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert httpx.get(f"{second.base_url}/v1/models", headers=headers).status_code == 200  # now in B's cache
    revoked = httpx.delete(f"{first.base_url}/v1/admin/keys/{created['id']}", headers=ADMIN_HEADERS)
    assert revoked.status_code == 200
    revoked_at = time.monotonic()
    while httpx.get(f"{second.base_url}/v1/models", headers=headers).status_code != 401:
        assert time.monotonic() - revoked_at < 1.0, "the other instance still accepts the revoked key"
        time.sleep(0.02)


def test_a_change_on_one_instance_reaches_the_other(
    two_instances: tuple[RunningServer, RunningServer],
) -> None:
    first, second = two_instances
    created = httpx.post(
        f"{first.base_url}/v1/admin/keys", json={"name": "narrowing"}, headers=ADMIN_HEADERS
    ).json()
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert httpx.get(f"{second.base_url}/v1/models", headers=headers).status_code == 200
    httpx.patch(
        f"{first.base_url}/v1/admin/keys/{created['id']}", json={"scopes": ["chat"]}, headers=ADMIN_HEADERS
    )
    changed_at = time.monotonic()
    while httpx.get(f"{second.base_url}/v1/models", headers=headers).status_code != 403:
        assert time.monotonic() - changed_at < 1.0
        time.sleep(0.02)


def _client_token(server: RunningServer, **fields: object) -> tuple[str, str]:
    """A new client (made on `server`) and a token for it: (client id, token)."""
    client = httpx.post(
        f"{server.base_url}/v1/admin/clients", json={"name": "shared", **fields}, headers=ADMIN_HEADERS
    ).json()
    form = {
        "grant_type": "client_credentials",
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
    }
    issued = httpx.post(f"{server.base_url}/v1/oauth/token", data=form)
    assert issued.status_code == 200, issued.text
    return client["client_id"], issued.json()["access_token"]


def test_a_client_revoked_on_one_instance_has_its_tokens_refused_by_the_other_within_a_second(
    two_instances: tuple[RunningServer, RunningServer],
) -> None:
    first, second = two_instances
    client_id, token = _client_token(first, scopes=["models:read"])
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{second.base_url}/v1/models", headers=headers).status_code == 200  # now in B's cache
    revoked = httpx.delete(f"{first.base_url}/v1/admin/clients/{client_id}", headers=ADMIN_HEADERS)
    assert revoked.status_code == 200
    revoked_at = time.monotonic()
    while httpx.get(f"{second.base_url}/v1/models", headers=headers).status_code != 401:
        assert time.monotonic() - revoked_at < 1.0, (
            "the other instance still accepts the revoked client's token"
        )
        time.sleep(0.02)


def test_a_signing_key_retired_on_one_instance_stops_verifying_on_the_other_within_a_second(
    two_instances: tuple[RunningServer, RunningServer],
) -> None:
    first, second = two_instances
    _, old = _client_token(first, scopes=["models:read"])
    headers = {"Authorization": f"Bearer {old}"}
    assert httpx.get(f"{second.base_url}/v1/models", headers=headers).status_code == 200
    rotated = httpx.post(
        f"{first.base_url}/v1/admin/signing-keys/rotate",
        json={"retire_previous": True},
        headers=ADMIN_HEADERS,
    )
    assert rotated.status_code == 200, rotated.text
    rotated_at = time.monotonic()
    while httpx.get(f"{second.base_url}/v1/models", headers=headers).status_code != 401:
        assert time.monotonic() - rotated_at < 1.0, "the other instance still accepts the retired key's token"
        time.sleep(0.02)
    _, new = _client_token(second, scopes=["models:read"])  # the other instance signs with the new key
    assert json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))["kid"] == rotated.json()["kid"]
    assert httpx.get(f"{first.base_url}/v1/models", headers=bearer(new)).status_code == 200


def test_postgresql_without_a_secret_key_refuses_to_start_and_says_why(tmp_path: Path) -> None:
    with postgres_schema() as database_url:
        env = {name: value for name, value in os.environ.items() if not name.startswith("LLMAPI_")}
        env |= {"LLMAPI_DATABASE_URL": database_url, "LLMAPI_MODELS_FILE": str(_models(tmp_path))}
        result = subprocess.run(
            [sys.executable, "-m", "llmapi.cli", "serve", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 2, result.stderr
    assert "LLMAPI_SECRET_KEY is required with PostgreSQL" in result.stderr
    assert "openssl rand" in result.stderr


def test_first_start_without_an_admin_prints_one_key_once(tmp_path: Path) -> None:
    env = {"LLMAPI_ADMIN_KEY": "", "LLMAPI_DATABASE_URL": f"sqlite:///{tmp_path / 'first.db'}"}
    with llmapi_server(tmp_path, models_file=_models(tmp_path), env=env) as server:
        key = next(line.strip() for line in server.log().splitlines() if line.strip().startswith("llmapi-"))
        me = httpx.get(f"{server.base_url}/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert me.json()["role"] == "admin"
    with llmapi_server(tmp_path, models_file=_models(tmp_path), env=env) as again:
        assert "No admin API key existed" not in again.log()


def test_auth_off_serves_without_credentials_and_says_so(tmp_path: Path) -> None:
    with llmapi_server(tmp_path, models_file=_models(tmp_path), env={"LLMAPI_AUTH": "off"}) as server:
        assert httpx.get(f"{server.base_url}/v1/models").status_code == 200
        assert "AUTHENTICATION IS OFF" in server.log()


def test_keys_create_prints_a_working_key_once(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "llmapi.cli", "keys", "create", "--role", "service", "--name", "from cli"],
        env={"LLMAPI_DATABASE_URL": database, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = result.stdout.strip()
    assert key.startswith("llmapi-")
    assert key not in result.stderr
    with llmapi_server(
        tmp_path, models_file=_models(tmp_path), env={"LLMAPI_DATABASE_URL": database}
    ) as server:
        me = httpx.get(f"{server.base_url}/v1/me", headers={"x-api-key": key}).json()
    assert (me["role"], me["name"]) == ("service", "from cli")
