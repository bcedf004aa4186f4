from __future__ import annotations

import pytest

from llmapi.serialization.negotiation import JSON, PROTOBUF, XML, request_format, response_format


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        ("application/xml", XML),
        ("text/xml", XML),
        ("application/x-protobuf", PROTOBUF),
        ("application/protobuf", PROTOBUF),
        ("text/event-stream", JSON),
        ("application/*", JSON),
        ("application/xml, application/json;q=0.5", XML),
        ("application/json;q=0.1, application/x-protobuf", PROTOBUF),
        ("*/*;q=0.1, application/xml;q=0.2", XML),
        ("application/*;q=0.3, application/json;q=0", XML),
        ("application/xml;q=0.5, application/json;q=0.5", JSON),
        ("text/html", None),
        ("application/json;q=0", None),
        ("application/json;q=oops", None),
    ],
)
def test_accept_picks_the_best_supported_format(accept: str | None, expected: str | None) -> None:
    assert response_format(accept) == expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, JSON),
        ("application/json", JSON),
        ("application/json; charset=utf-8", JSON),
        ("Application/XML", XML),
        ("text/xml; charset=utf-8", XML),
        ("application/x-protobuf", PROTOBUF),
        ("application/protobuf", PROTOBUF),
        ("application/x-www-form-urlencoded", None),
        ("text/plain", None),
    ],
)
def test_content_type_names_the_request_format(content_type: str | None, expected: str | None) -> None:
    assert request_format(content_type) == expected
