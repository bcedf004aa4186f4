from __future__ import annotations

import pytest
from tests.auth.doubles import MemoryClients

from llmapi.auth.access_tokens import AccessTokens
from llmapi.auth.oauth import ClientCredentialsGrant, OAuthError, require_client_credentials_grant
from llmapi.auth.scopes import Scope


@pytest.fixture
def clients() -> MemoryClients:
    return MemoryClients()


@pytest.fixture
def grant(clients: MemoryClients, tokens: AccessTokens) -> ClientCredentialsGrant:
    return ClientCredentialsGrant(clients=clients, tokens=tokens, ttl_seconds=900)


async def oauth_error(grant: ClientCredentialsGrant, **request: str | None) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await grant.token_for_client(**request)  # type: ignore[arg-type]
    secret = request.get("client_secret")
    assert not secret or secret not in str(caught.value.body())
    return caught.value


async def test_a_client_gets_its_own_scopes_by_default(
    grant: ClientCredentialsGrant, clients: MemoryClients, tokens: AccessTokens
) -> None:
    secret = clients.create("batch-worker", role="service", scopes=["chat", "embeddings"])
    issued = await grant.token_for_client(client_id="batch-worker", client_secret=secret, scope=None)
    assert issued.scope == "chat embeddings"
    assert issued.expires_in == 900
    principal = await tokens.verify(issued.token)
    assert (principal.id, principal.kind) == ("batch-worker", "oauth_client")
    assert principal.scopes == {Scope.CHAT, Scope.EMBEDDINGS}


async def test_a_client_may_narrow_but_not_widen(
    grant: ClientCredentialsGrant, clients: MemoryClients
) -> None:
    secret = clients.create("c", role="service", scopes=["chat", "embeddings"])
    issued = await grant.token_for_client(client_id="c", client_secret=secret, scope="  chat ")
    assert issued.scope == "chat"
    error = await oauth_error(grant, client_id="c", client_secret=secret, scope="chat admin")
    assert (error.error, error.status_code) == ("invalid_scope", 400)
    assert error.body() == {"error": "invalid_scope", "error_description": error.description}
    assert "admin" in error.description


async def test_wrong_secret_and_unknown_client_are_invalid_client(
    grant: ClientCredentialsGrant, clients: MemoryClients
) -> None:
    clients.create("c")
    for client_id, secret in [("c", "llmapi-cs-wrong"), ("nobody", "llmapi-cs-wrong"), ("c", "")]:
        error = await oauth_error(grant, client_id=client_id, client_secret=secret, scope=None)
        assert (error.error, error.status_code) == ("invalid_client", 401)
        assert error.headers["WWW-Authenticate"].startswith("Basic")
        assert error.headers["Cache-Control"] == "no-store"


def test_only_the_client_credentials_grant_is_supported() -> None:
    require_client_credentials_grant("client_credentials")
    with pytest.raises(OAuthError) as missing:
        require_client_credentials_grant(None)
    assert missing.value.error == "invalid_request"
    with pytest.raises(OAuthError) as other:
        require_client_credentials_grant("password")
    assert (other.value.error, other.value.status_code) == ("unsupported_grant_type", 400)
