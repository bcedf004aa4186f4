"""The admin API: API keys, OAuth clients and signing-key rotation (scope `admin`)."""

from __future__ import annotations

from starlette.responses import Response

from llmapi.api.deps import IdentityDep
from llmapi.api.responses import json_response
from llmapi.api.route_classes import AuthenticatedRoute
from llmapi.api.routing import Router
from llmapi.api.security import PrincipalDep, require
from llmapi.auth.scopes import Scope
from llmapi.protocol.admin import (
    ClientInfo,
    ClientList,
    CreateClientRequest,
    CreatedClient,
    CreatedKey,
    CreateKeyRequest,
    KeyInfo,
    KeyList,
    RotatedSigningKey,
    RotateSigningKeyRequest,
    UpdateKeyRequest,
)

router = Router(
    prefix="/v1/admin", tags=["admin"], dependencies=[require(Scope.ADMIN)], route_class=AuthenticatedRoute
)


@router.post("/keys", response_model=CreatedKey, status_code=201, summary="Create an API key (shown once)")
async def create_key(body: CreateKeyRequest, identity: IdentityDep, actor: PrincipalDep) -> Response:
    return json_response(await identity.admin.create_key(actor=actor, body=body), status_code=201)


@router.get("/keys", response_model=KeyList, summary="List API keys (never their secrets)")
async def list_keys(identity: IdentityDep, include_revoked: bool = False) -> Response:
    return json_response(KeyList(data=await identity.admin.list_keys(include_revoked=include_revoked)))


@router.get("/keys/{key_id}", response_model=KeyInfo, summary="Describe an API key")
async def get_key(key_id: str, identity: IdentityDep) -> Response:
    return json_response(await identity.admin.get_key(key_id))


@router.patch(
    "/keys/{key_id}", response_model=KeyInfo, summary="Change an API key's name, role, scopes, limits"
)
async def update_key(
    key_id: str, body: UpdateKeyRequest, identity: IdentityDep, actor: PrincipalDep
) -> Response:
    return json_response(await identity.admin.update_key(actor=actor, key_id=key_id, body=body))


@router.delete("/keys/{key_id}", response_model=KeyInfo, summary="Revoke an API key")
async def revoke_key(key_id: str, identity: IdentityDep, actor: PrincipalDep) -> Response:
    return json_response(await identity.admin.revoke_key(actor=actor, key_id=key_id))


@router.post("/clients", response_model=CreatedClient, status_code=201, summary="Create an OAuth2 client")
async def create_client(body: CreateClientRequest, identity: IdentityDep, actor: PrincipalDep) -> Response:
    return json_response(await identity.admin.create_client(actor=actor, body=body), status_code=201)


@router.get("/clients", response_model=ClientList, summary="List OAuth2 clients")
async def list_clients(identity: IdentityDep, include_revoked: bool = False) -> Response:
    return json_response(ClientList(data=await identity.admin.list_clients(include_revoked=include_revoked)))


@router.get("/clients/{client_id}", response_model=ClientInfo, summary="Describe an OAuth2 client")
async def get_client(client_id: str, identity: IdentityDep) -> Response:
    return json_response(await identity.admin.get_client(client_id))


@router.delete("/clients/{client_id}", response_model=ClientInfo, summary="Revoke an OAuth2 client")
async def revoke_client(client_id: str, identity: IdentityDep, actor: PrincipalDep) -> Response:
    return json_response(await identity.admin.revoke_client(actor=actor, client_id=client_id))


@router.post(
    "/signing-keys/rotate",
    response_model=RotatedSigningKey,
    summary="Sign new tokens with a new key; the old keys' tokens stay valid unless retire_previous",
)
async def rotate_signing_key(
    identity: IdentityDep, actor: PrincipalDep, body: RotateSigningKeyRequest | None = None
) -> Response:
    retire = body is not None and body.retire_previous
    kid = await identity.rotate_signing_key(actor=actor, retire_previous=retire)
    return json_response(RotatedSigningKey(kid=kid, retired_previous=retire))
