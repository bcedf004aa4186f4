"""The error bodies: OpenAI's on every answer, RFC 6749's on the token endpoint's refusals."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    message: str = Field(description="What went wrong and what to do about it.")
    type: str = Field(description="invalid_request_error, authentication_error, rate_limit_error, ...")
    param: str | None = Field(description="The request field at fault, if one is.")
    code: str | None = Field(description="A stable code for programs (e.g. model_not_found).")


class ErrorResponse(BaseModel):
    """Every error, in OpenAI's shape."""

    error: ErrorDetail


class OAuthErrorResponse(BaseModel):
    """A refusal of the OAuth token endpoint (RFC 6749 §5.2)."""

    error: str = Field(
        description="invalid_request, invalid_client, invalid_scope or unsupported_grant_type."
    )
    error_description: str
