"""Reading a request's body: a client that leaves before its body is whole gets nothing decoded."""

from __future__ import annotations

from pathlib import Path

from starlette.types import Message
from tests.api.inprocess import in_process
from tests.servers import ADMIN_KEY

from llmapi.backends.local.vader import VaderSentimentBackend
from llmapi.model_specs import ModelSpec


async def test_a_body_cut_short_by_a_disconnect_is_never_decoded(tmp_path: Path) -> None:
    """The part that arrived is a whole JSON request by itself; it must not be answered as one."""
    arrived = b'{"model": "vader", "text": "what arrived"}'
    vader = VaderSentimentBackend(ModelSpec(id="vader", task="sentiment", backend="vader"))
    incoming: list[Message] = [
        {"type": "http.request", "body": arrived, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/analyze/sentiment",
        "raw_path": b"/v1/analyze/sentiment",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"llmapi.test"),
            (b"authorization", f"Bearer {ADMIN_KEY}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(arrived) + 100).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    async with in_process(tmp_path, vader) as stack:
        await stack.app(scope, receive, send)

    (start,) = [m for m in sent if m["type"] == "http.response.start"]
    assert start["status"] == 499
