"""Log lines are bounded in size, whatever a message or an exception carries."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from llmapi.observability.logging import MAX_LINE_CHARS, configure_logging


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """The root logger as `configure_logging` sets it up, writing into a buffer; restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers.clear()  # so that configure_logging does not close pytest's own
    configure_logging("info")
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    output = io.StringIO()
    handler.setStream(output)
    try:
        yield output
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def test_a_huge_message_is_cut_and_says_so(log_output: io.StringIO) -> None:
    logging.getLogger("llmapi.test").warning("client sent %s", "a" * 3_000_000)

    line = log_output.getvalue()
    assert len(line) < MAX_LINE_CHARS + 200
    assert line.rstrip().endswith("characters cut]")
    assert "WARNING llmapi.test: client sent aaa" in line


def test_a_huge_exception_is_cut(log_output: io.StringIO) -> None:
    try:
        raise ValueError("b" * 3_000_000)
    except ValueError:
        logging.getLogger("llmapi.test").exception("failed")

    assert len(log_output.getvalue()) < MAX_LINE_CHARS + 200


def test_an_ordinary_line_is_untouched(log_output: io.StringIO) -> None:
    logging.getLogger("llmapi.test").info("serving %d models", 3)

    assert log_output.getvalue().endswith("INFO llmapi.test: serving 3 models\n")
