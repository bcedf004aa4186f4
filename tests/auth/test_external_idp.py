from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from tests.auth.idp_server import IDP_AUDIENCE, IDP_ISSUER, FakeIdP, running_idp

from llmapi.auth.external_idp import ExternalIdP
from llmapi.auth.scopes import Scope
from llmapi.config import ConfigError, OIDCSettings
from llmapi.errors import AuthenticationError, ServiceUnavailableError

SCOPE_MAP = {"llm.chat": ["chat"], "llm.read": ["models:read"], "llm.admin": ["admin"]}

MakeIdP = Callable[..., ExternalIdP]


@pytest.fixture
async def idp() -> AsyncIterator[FakeIdP]:
    async with running_idp() as running:
        yield running


@pytest.fixture
async def make_external(idp: FakeIdP) -> AsyncIterator[MakeIdP]:
    made: list[ExternalIdP] = []

    def make(min_refetch_interval: float = 30.0, **settings: Any) -> ExternalIdP:
        options: dict[str, Any] = {
            "issuer": IDP_ISSUER, "jwks_url": idp.jwks_url, "audience": IDP_AUDIENCE, "scope_map": SCOPE_MAP,
        }  # fmt: skip
        external = ExternalIdP(
            OIDCSettings(**(options | settings)), min_refetch_interval=min_refetch_interval
        )
        made.append(external)
        return external

    yield make
    for external in made:
        await external.close()


def hs256(claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 token made by hand (PyJWT rightly refuses to use a public key as an HMAC secret)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","kid":"idp-1","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    return signing_input + "." + b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


async def refused(external: ExternalIdP, token: str) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        await external.verify(token)
    assert token not in caught.value.message
    return caught.value


async def test_scopes_are_mapped_and_narrowed_to_the_role(idp: FakeIdP, make_external: MakeIdP) -> None:
    external = make_external(role="service")
    principal = await external.verify(idp.token(scope="llm.chat llm.read llm.admin profile"))
    assert (principal.id, principal.kind, principal.role) == ("ext:alice", "external", "service")
    assert principal.scopes == {Scope.CHAT, Scope.MODELS_READ}  # admin is beyond the service role


@pytest.mark.parametrize(
    ("claim", "claims"),
    [
        ("groups", {"groups": ["llm.chat", "staff"]}),
        ("realm_access.roles", {"realm_access": {"roles": ["llm.chat"]}}),
    ],
)
async def test_a_groups_claim_works_too(
    idp: FakeIdP, make_external: MakeIdP, claim: str, claims: dict[str, Any]
) -> None:
    external = make_external(scope_claim=claim)
    assert (await external.verify(idp.token(**claims))).scopes == {Scope.CHAT}


async def test_bad_tokens_are_refused_with_the_reason(idp: FakeIdP, make_external: MakeIdP) -> None:
    external = make_external()
    assert "audience" in (await refused(external, idp.token(aud="someone-else"))).message
    assert "expired" in (await refused(external, idp.token(exp=1))).message
    impostor = ec.generate_private_key(ec.SECP256R1())
    assert "signature" in (await refused(external, idp.token(key=impostor))).message
    hmac_with_public_key = hs256(
        {"iss": IDP_ISSUER, "aud": IDP_AUDIENCE, "sub": "mallory", "exp": 2**31},
        json.dumps(idp.public_jwk("idp-1")).encode(),
    )
    assert "algorithm" in (await refused(external, hmac_with_public_key)).message
    unsigned = jwt.encode({"iss": IDP_ISSUER, "sub": "m"}, "", algorithm="none", headers={"kid": "idp-1"})
    await refused(external, unsigned)


async def test_unknown_kids_refetch_at_most_once_per_interval(idp: FakeIdP, make_external: MakeIdP) -> None:
    external = make_external(min_refetch_interval=60.0)
    await external.verify(idp.token())
    idp.add_key("idp-2")
    assert "does not publish" in (await refused(external, idp.token(kid="idp-2"))).message
    assert idp.fetches == 1


async def test_a_key_rotation_at_the_provider_is_picked_up(idp: FakeIdP, make_external: MakeIdP) -> None:
    external = make_external(min_refetch_interval=0.0)
    await external.verify(idp.token())
    idp.add_key("idp-2")
    assert (await external.verify(idp.token(kid="idp-2"))).id == "ext:alice"
    assert idp.fetches == 2


async def test_an_unreachable_key_set_is_a_503(idp: FakeIdP, make_external: MakeIdP) -> None:
    idp.status = 500
    with pytest.raises(ServiceUnavailableError):
        await make_external().verify(idp.token())
    gone = make_external(jwks_url="http://127.0.0.1:9/jwks")
    with pytest.raises(ServiceUnavailableError):
        await gone.verify(idp.token())


def test_a_scope_map_naming_unknown_scopes_is_a_config_error(idp: FakeIdP) -> None:
    settings = OIDCSettings(
        issuer=IDP_ISSUER, jwks_url=idp.jwks_url, audience=IDP_AUDIENCE, scope_map={"x": ["superpowers"]}
    )
    with pytest.raises(ConfigError, match="superpowers"):
        ExternalIdP(settings)
