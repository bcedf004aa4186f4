"""The process's log: one format, and lines of bounded size whatever a message or an exception carries."""

from __future__ import annotations

import logging

# Long enough for any traceback of ours; a line past it is cut where it passes and says how much was cut.
MAX_LINE_CHARS = 16_384


class BoundedFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if len(line) <= MAX_LINE_CHARS:
            return line
        return f"{line[:MAX_LINE_CHARS]} [{len(line) - MAX_LINE_CHARS:,} characters cut]"


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        BoundedFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    )
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
