"""The admin API: API keys and OAuth clients. Secrets appear once, in the creation response."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llmapi.protocol.common import Label, UTCTime
from llmapi.types import RateLimits, Role


class CreateKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Label
    role: Role = "developer"
    scopes: list[str] | None = Field(default=None, description="Narrow the role's scopes; never widens them.")
    expires_at: UTCTime | None = None
    rate_limits: RateLimits | None = None


class UpdateKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Label | None = None
    role: Role | None = None
    scopes: list[str] | None = None
    expires_at: UTCTime | None = None
    rate_limits: RateLimits | None = None


class KeyInfo(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    display_prefix: str
    role: Role
    scopes: list[str]
    rate_limits: RateLimits
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class CreatedKey(KeyInfo):
    key: str = Field(description="The API key. Shown this once; only its hash is stored.")


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyInfo]


class CreateClientRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Label
    role: Role = "service"
    scopes: list[str] | None = None


class ClientInfo(BaseModel):
    client_id: str
    object: Literal["oauth_client"] = "oauth_client"
    name: str
    role: Role
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class CreatedClient(ClientInfo):
    client_secret: str = Field(description="Shown this once; only its hash is stored.")


class ClientList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ClientInfo]


class RotateSigningKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retire_previous: bool = Field(
        default=False,
        description="Delete the previous keys at once: the tokens they signed stop verifying (a key leaked). "
        "Otherwise they verify until the tokens they signed expire.",
    )


class RotatedSigningKey(BaseModel):
    kid: str = Field(description="The key that signs new tokens from now on.")
    retired_previous: bool


class Me(BaseModel):
    object: Literal["principal"] = "principal"
    id: str
    kind: str
    name: str
    role: Role
    scopes: list[str]
    rate_limits: RateLimits


class UsageRow(BaseModel):
    day: str
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cached_requests: int


class UsageReport(BaseModel):
    object: Literal["usage.report"] = "usage.report"
    principal_id: str | None = Field(description="Whose usage; null when an admin asked for everyone's.")
    data: list[UsageRow]


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str
