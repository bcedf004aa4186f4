"""Identity and access over HTTP: API keys, roles and scopes, OAuth2 client credentials, usage, audit."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import openai
import pytest
from tests.conftest import OpenAISchemas
from tests.servers import ADMIN_HEADERS, ADMIN_KEY, RunningServer, llmapi_server

SENTIMENT_ONLY = "models:\n  - {id: vader, task: sentiment, backend: vader}\n"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp("auth")
    (directory / "models.yaml").write_text(SENTIMENT_ONLY)
    env = {"LLMAPI_DATABASE_URL": f"sqlite:///{directory / 'auth.db'}"}
    with llmapi_server(directory, models_file=directory / "models.yaml", env=env) as running:
        yield running


@pytest.fixture(scope="module")
def database(auth_server: RunningServer) -> Path:
    return auth_server.log_path.parent / "auth.db"


@pytest.fixture
def admin(auth_server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=auth_server.base_url, headers=ADMIN_HEADERS, timeout=30) as client:
        yield client


def new_key(admin: httpx.Client, **fields: object) -> dict[str, object]:
    response = admin.post("/v1/admin/keys", json={"name": "test", **fields})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def as_key(server: RunningServer, key: object) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


ANALYZE = {"text": "I love it"}


def test_no_credentials_is_a_401_with_www_authenticate(
    auth_server: RunningServer, openai_schemas: OpenAISchemas
) -> None:
    response = httpx.post(f"{auth_server.base_url}/v1/analyze/sentiment", json=ANALYZE)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    openai_schemas.validate("ErrorResponse", response.json())
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=auth_server.api_url, api_key="llmapi-wrong", max_retries=0).models.list()


def test_a_bad_key_is_never_echoed(auth_server: RunningServer) -> None:
    secret = "llmapi-this-is-not-a-real-key-but-looks-like-one"
    response = httpx.get(f"{auth_server.base_url}/v1/models", headers={"x-api-key": secret})
    assert response.status_code == 401
    assert secret not in response.text
    assert secret not in auth_server.log()


def test_a_created_key_works_by_bearer_and_x_api_key_and_is_shown_once(
    auth_server: RunningServer, admin: httpx.Client
) -> None:
    created = new_key(admin, role="service")
    key = str(created["key"])
    assert key.startswith("llmapi-")
    assert str(created["display_prefix"]) == key[: len(str(created["display_prefix"]))]
    with as_key(auth_server, key) as client:
        assert client.post("/v1/analyze/sentiment", json=ANALYZE).status_code == 200
    assert httpx.get(f"{auth_server.base_url}/v1/models", headers={"x-api-key": key}).status_code == 200
    listed = admin.get("/v1/admin/keys").text + admin.get(f"/v1/admin/keys/{created['id']}").text
    assert key not in listed
    assert "key" not in admin.get(f"/v1/admin/keys/{created['id']}").json()


def test_the_plaintext_key_is_not_in_the_database(admin: httpx.Client, database: Path) -> None:
    key = str(new_key(admin)["key"])
    with sqlite3.connect(database) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = "\n".join(
            str(row) for table in tables for row in connection.execute(f'SELECT * FROM "{table}"')
        )
    assert key[-20:] not in dump


def test_scopes_gate_each_route(auth_server: RunningServer, admin: httpx.Client) -> None:
    key = new_key(admin, role="service", scopes=["models:read"])["key"]
    with as_key(auth_server, key) as client:
        assert client.get("/v1/models").status_code == 200
        refused = client.post("/v1/analyze/sentiment", json=ANALYZE)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "insufficient_scope"
        assert "analyze" in refused.json()["error"]["message"]


def test_a_non_admin_cannot_create_keys(auth_server: RunningServer, admin: httpx.Client) -> None:
    key = new_key(admin, role="developer")["key"]
    with as_key(auth_server, key) as client:
        assert client.post("/v1/admin/keys", json={"name": "x"}).status_code == 403
        assert client.get("/v1/admin/keys").status_code == 403


def test_a_role_cannot_be_widened_by_scopes(admin: httpx.Client) -> None:
    response = admin.post("/v1/admin/keys", json={"name": "x", "role": "service", "scopes": ["admin"]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "scopes"


def test_expired_and_revoked_keys_are_refused(auth_server: RunningServer, admin: httpx.Client) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    expired = new_key(admin, expires_at=past)["key"]
    with as_key(auth_server, expired) as client:
        response = client.get("/v1/models")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]

    created = new_key(admin)
    with as_key(auth_server, created["key"]) as client:
        assert client.get("/v1/models").status_code == 200
        assert admin.delete(f"/v1/admin/keys/{created['id']}").json()["revoked_at"] is not None
        response = client.get("/v1/models")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_patch_changes_a_key_at_once(auth_server: RunningServer, admin: httpx.Client) -> None:
    created = new_key(admin, role="developer")
    with as_key(auth_server, created["key"]) as client:
        assert client.post("/v1/analyze/sentiment", json=ANALYZE).status_code == 200
        patched = admin.patch(f"/v1/admin/keys/{created['id']}", json={"name": "renamed", "scopes": ["chat"]})
        assert patched.json()["name"] == "renamed"
        assert patched.json()["scopes"] == ["chat"]
        assert client.post("/v1/analyze/sentiment", json=ANALYZE).status_code == 403


def test_me_and_rate_limit_fields(auth_server: RunningServer, admin: httpx.Client) -> None:
    limits = {"requests_per_minute": 60, "tokens_per_minute": 1000, "max_concurrent": 2}
    key = new_key(admin, role="service", rate_limits=limits)["key"]
    with as_key(auth_server, key) as client:
        me = client.get("/v1/me").json()
    assert me["role"] == "service"
    assert me["rate_limits"] == {**limits, "tokens_per_day": None, "tokens_per_month": None}
    assert "admin" not in me["scopes"]


def test_usage_is_recorded_per_principal(auth_server: RunningServer, admin: httpx.Client) -> None:
    key = new_key(admin, role="developer")["key"]
    with as_key(auth_server, key) as client:
        for _ in range(3):
            assert client.post("/v1/analyze/sentiment", json={"texts": ["good", "bad"]}).status_code == 200
        report = client.get("/v1/usage").json()
    [row] = report["data"]
    assert (row["model"], row["requests"]) == ("vader", 3)
    everyone = admin.get("/v1/usage", params={"all": "true"}).json()
    assert everyone["principal_id"] is None
    assert sum(r["requests"] for r in everyone["data"]) >= 3


def test_admin_actions_are_audited(admin: httpx.Client, database: Path) -> None:
    created = new_key(admin)
    admin.delete(f"/v1/admin/keys/{created['id']}")
    with sqlite3.connect(database) as connection:
        actions = [
            row[0]
            for row in connection.execute("SELECT action FROM audit_log WHERE target_id = ?", [created["id"]])
        ]
    assert actions == ["api_key.create", "api_key.revoke"]


def client_token(
    server: RunningServer, client_id: str, secret: str, scope: str | None = None
) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    if scope:
        form["scope"] = scope
    return httpx.post(f"{server.base_url}/v1/oauth/token", data=form)


def test_oauth_client_credentials(auth_server: RunningServer, admin: httpx.Client) -> None:
    client = admin.post(
        "/v1/admin/clients", json={"name": "batch", "scopes": ["analyze", "models:read"]}
    ).json()
    issued = client_token(auth_server, client["client_id"], client["client_secret"], scope="analyze")
    assert issued.status_code == 200, issued.text
    token = issued.json()
    assert (token["token_type"], token["scope"]) == ("Bearer", "analyze")
    header = json.loads(base64.urlsafe_b64decode(token["access_token"].split(".")[0] + "=="))
    kids = [k["kid"] for k in httpx.get(f"{auth_server.base_url}/.well-known/jwks.json").json()["keys"]]
    assert header["kid"] in kids
    with as_key(auth_server, token["access_token"]) as caller:
        assert caller.post("/v1/analyze/sentiment", json=ANALYZE).status_code == 200
        assert caller.get("/v1/models").status_code == 403  # narrowed to `analyze` by the request


def test_oauth_refuses_bad_secrets_and_wider_scopes(auth_server: RunningServer, admin: httpx.Client) -> None:
    client = admin.post("/v1/admin/clients", json={"name": "narrow", "scopes": ["analyze"]}).json()
    bad = client_token(auth_server, client["client_id"], "llmapi-cs-wrong")
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"
    wide = client_token(auth_server, client["client_id"], client["client_secret"], scope="admin")
    assert wide.status_code == 400
    assert wide.json()["error"] == "invalid_scope"


def test_a_token_with_altered_claims_is_refused(auth_server: RunningServer, admin: httpx.Client) -> None:
    client = admin.post("/v1/admin/clients", json={"name": "forger", "scopes": ["analyze"]}).json()
    token = client_token(auth_server, client["client_id"], client["client_secret"]).json()["access_token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"], claims["role"] = "admin analyze", "admin"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with as_key(auth_server, f"{header}.{forged_payload}.{signature}") as caller:
        response = caller.get("/v1/admin/keys")
    assert response.status_code == 401


def test_signing_key_rotation_keeps_old_tokens_valid(auth_server: RunningServer, admin: httpx.Client) -> None:
    client = admin.post("/v1/admin/clients", json={"name": "rotating", "scopes": ["analyze"]}).json()
    old = client_token(auth_server, client["client_id"], client["client_secret"]).json()["access_token"]
    new_kid = admin.post("/v1/admin/signing-keys/rotate").json()["kid"]
    new = client_token(auth_server, client["client_id"], client["client_secret"]).json()["access_token"]
    assert json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))["kid"] == new_kid
    for token in (old, new):
        with as_key(auth_server, token) as caller:
            assert caller.post("/v1/analyze/sentiment", json=ANALYZE).status_code == 200


def test_openapi_declares_the_security_schemes(auth_server: RunningServer) -> None:
    schemes = httpx.get(f"{auth_server.base_url}/openapi.json").json()["components"]["securitySchemes"]
    assert {"HTTPBearer", "APIKeyHeader", "OAuth2"} <= set(schemes)


def test_admin_key_from_the_environment_is_an_admin(admin: httpx.Client) -> None:
    me = admin.get("/v1/me").json()
    assert me["role"] == "admin"
    assert "admin" in me["scopes"]
    assert ADMIN_KEY not in json.dumps(me)
