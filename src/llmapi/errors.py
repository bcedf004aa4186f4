"""Domain errors and their one mapping to OpenAI-shaped error bodies.

Code raises these; the app's exception handlers turn them into responses. Messages say what to do.
"""

from __future__ import annotations

import math
from typing import Any


class APIError(Exception):
    """An error the client can act on. Subclasses fix the HTTP status and the OpenAI error type."""

    status_code = 400
    error_type = "invalid_request_error"
    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(APIError):
    status_code = 400


class ContextLengthExceededError(InvalidRequestError):
    default_code = "context_length_exceeded"


class UnsupportedError(InvalidRequestError):
    default_code = "unsupported_parameter"


class NotFoundError(APIError):
    status_code = 404
    default_code = "not_found"


class ModelNotFoundError(NotFoundError):
    default_code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model '{model}' does not exist. GET /v1/models lists the models this server serves.",
            param="model",
        )


class WrongTaskError(InvalidRequestError):
    default_code = "model_not_supported"

    def __init__(self, model: str, task: str, endpoint_task: str) -> None:
        super().__init__(
            f"The model '{model}' is a {task} model; this endpoint needs a {endpoint_task} model. "
            "GET /v1/models shows each model's task.",
            param="model",
        )


class ServiceUnavailableError(APIError):
    status_code = 503
    error_type = "server_error"
    default_code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(retry_after)})


class ServerOverloadedError(ServiceUnavailableError):
    error_type = "server_overloaded"
    default_code = "server_overloaded"


class UpstreamError(APIError):
    """The remote engine behind a model failed or could not be reached."""

    status_code = 502
    error_type = "upstream_error"
    default_code = "upstream_error"


class UpstreamTimeoutError(UpstreamError):
    status_code = 504
    default_code = "upstream_timeout"


class InternalServerError(APIError):
    """Never raised on purpose: the shape an unexpected failure is reported in (and logged as a bug)."""

    status_code = 500
    error_type = "server_error"
    default_code = "internal_error"


class AuthenticationError(APIError):
    """Missing, malformed, unknown, expired or revoked credentials. Never echoes the credential."""

    status_code = 401
    default_code = "invalid_api_key"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"WWW-Authenticate": 'Bearer realm="llmapi"'})


class PermissionDeniedError(APIError):
    status_code = 403
    default_code = "insufficient_scope"


class RateLimitError(APIError):
    """429: a rate or concurrency limit refused the request; `Retry-After` says when to try again."""

    status_code = 429
    default_code = "rate_limit_exceeded"

    def __init__(
        self, message: str, *, error_type: str, retry_after_s: float, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, headers={**(headers or {}), **retry_after_headers(retry_after_s)})
        self.error_type = error_type


class QuotaExceededError(RateLimitError):
    """429 with code `insufficient_quota`: a daily or monthly token budget is spent."""

    default_code = "insufficient_quota"


def retry_after_headers(seconds: float) -> dict[str, str]:
    """`Retry-After` in whole seconds (rounded up) and `retry-after-ms`, which OpenAI SDKs read first."""
    milliseconds = max(1, math.ceil(seconds * 1000))
    return {"Retry-After": str(math.ceil(milliseconds / 1000)), "retry-after-ms": str(milliseconds)}


class InvalidBodyError(InvalidRequestError):
    """The body cannot be read in its format: malformed, badly encoded, too deeply nested, hostile."""

    default_code = "invalid_body"


class PayloadTooLargeError(APIError):
    status_code = 413
    default_code = "request_too_large"


class RequestTimeoutError(APIError):
    """408: the request's head or body did not arrive in time (refused by the server, before the app)."""

    status_code = 408
    default_code = "request_timeout"


class HeaderFieldsTooLargeError(APIError):
    """431: the request's line and headers are larger than the server takes."""

    status_code = 431
    default_code = "request_header_fields_too_large"


class UnsupportedMediaTypeError(APIError):
    status_code = 415
    default_code = "unsupported_media_type"


class NotAcceptableError(APIError):
    status_code = 406
    default_code = "not_acceptable"
