from __future__ import annotations

import pytest

from llmapi.auth.credentials import credential_from_headers
from llmapi.errors import AuthenticationError


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "expected"),
    [
        ("Bearer llmapi-abc", None, "llmapi-abc"),
        ("bearer   llmapi-abc ", None, "llmapi-abc"),
        ("BEARER a.b.c", "llmapi-other", "a.b.c"),
        (None, " llmapi-abc ", "llmapi-abc"),
        ("Basic dXNlcjpwYXNz", "llmapi-abc", "llmapi-abc"),
        (None, None, None),
        ("", "", None),
    ],
)
def test_credential_from_headers(
    authorization: str | None, x_api_key: str | None, expected: str | None
) -> None:
    assert credential_from_headers(authorization, x_api_key) == expected


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Bearer", "llmapi-abc"])
def test_an_authorization_header_without_a_bearer_credential_is_refused(authorization: str) -> None:
    with pytest.raises(AuthenticationError, match="Bearer"):
        credential_from_headers(authorization, None)
