"""The request base: unknown fields are accepted and logged, in a line of bounded size whatever was sent."""

from __future__ import annotations

import logging

import pytest

from llmapi.protocol.common import RequestModel


class Probe(RequestModel):
    model: str


def unknown_field_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "unknown request field" in r.getMessage()]


def test_unknown_fields_are_accepted_and_named(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="llmapi.protocol.common"):
        probe = Probe.model_validate({"model": "m", "logprobs_v2": True})

    assert probe.model == "m"
    (line,) = unknown_field_lines(caplog)
    assert "'logprobs_v2'" in line
    assert "1 unknown request field" in line


def test_a_flood_of_unknown_fields_logs_a_short_line(caplog: pytest.LogCaptureFixture) -> None:
    """3.5 MB of unknown field names once made a 2.75 MB log line."""
    body = {"model": "m", **{f"{i:06d}" + "x" * 1_000: 0 for i in range(3_500)}}

    with caplog.at_level(logging.INFO, logger="llmapi.protocol.common"):
        Probe.model_validate(body)

    (line,) = unknown_field_lines(caplog)
    assert len(line) < 1_024, len(line)
    assert "3500 unknown request field(s)" in line
    assert "'000000xxx" in line


def test_a_field_name_cannot_forge_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="llmapi.protocol.common"):
        Probe.model_validate({"model": "m", "x\n2026-01-01T00:00:00 ERROR llmapi: forged": 1})

    (line,) = unknown_field_lines(caplog)
    assert "\n" not in line
