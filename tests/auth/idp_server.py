"""A real HTTP server on 127.0.0.1 serving an identity provider's JWKS, and tokens signed with its key."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import ec

IDP_ISSUER = "https://idp.test/realms/main"
IDP_AUDIENCE = "llmapi"


class FakeIdP:
    def __init__(self) -> None:
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {"idp-1": ec.generate_private_key(ec.SECP256R1())}
        self.fetches = 0
        self.status = 200
        self.jwks_url = ""

    def public_jwk(self, kid: str) -> dict[str, Any]:
        public = jwt.algorithms.ECAlgorithm.to_jwk(self.keys[kid].public_key(), as_dict=True)
        return {**public, "kid": kid, "use": "sig"}

    def add_key(self, kid: str) -> None:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())

    def token(
        self, *, kid: str = "idp-1", key: ec.EllipticCurvePrivateKey | None = None, **claims: Any
    ) -> str:
        now = int(time.time())
        payload = {"iss": IDP_ISSUER, "aud": IDP_AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300}
        payload.update(claims)
        return jwt.encode(payload, key or self.keys[kid], algorithm="ES256", headers={"kid": kid})

    async def serve_jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if self.status != 200:
            return web.Response(status=self.status)
        body = {"keys": [self.public_jwk(kid) for kid in self.keys] + [{"kty": "oct", "k": "c2VjcmV0"}]}
        return web.json_response(body, dumps=json.dumps)


@asynccontextmanager
async def running_idp() -> AsyncIterator[FakeIdP]:
    idp = FakeIdP()
    app = web.Application()
    app.router.add_get("/jwks", idp.serve_jwks)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    idp.jwks_url = str(server.make_url("/jwks"))
    try:
        yield idp
    finally:
        await server.close()
