"""A fixed-answer OpenAI-compatible upstream, much cheaper per request than any proxy in front of it.

    .venv/bin/python -m bench.gateway.upstream --port 8001

A raw `asyncio.Protocol` on uvloop with httptools' parser, HTTP/1.1 keep-alive (pipelining too), no framework.
Any POST gets a fixed chat completion (with `usage`) as JSON; a POST whose body has `"stream": true` gets a
fixed event stream instead: a role chunk, CONTENT_CHUNKS content chunks, a finish chunk, a usage chunk when
`stream_options.include_usage` is set, then `data: [DONE]`, in one write, chunked transfer encoding with one
event per HTTP chunk. Any GET gets a model list (what a health check may ask for). The `model` of the request
is not echoed: every answer is the same bytes, built once.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import httptools
import orjson
import uvloop

MODEL = "bench-upstream"
CONTENT_CHUNKS = 16
PROMPT_TOKENS = 54
# 16 pieces of about 3 tokens: 48 tokens of assistant text.
PIECES = [f"word{i:02d} and more " for i in range(CONTENT_CHUNKS)]
_ID, _CREATED = "chatcmpl-bench0000000000000000000000", 1_767_225_600
USAGE = {
    "prompt_tokens": PROMPT_TOKENS,
    "completion_tokens": 3 * CONTENT_CHUNKS,
    "total_tokens": PROMPT_TOKENS + 3 * CONTENT_CHUNKS,
}


def completion() -> bytes:
    return orjson.dumps(
        {
            "id": _ID,
            "object": "chat.completion",
            "created": _CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(PIECES)},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    )


def events(include_usage: bool) -> list[bytes]:
    """The stream's events, each `data: ...\\n\\n`: role, content pieces, finish, [usage], [DONE]."""

    def chunk(choices: list[dict[str, object]], usage: dict[str, int] | None = None) -> bytes:
        body = {"id": _ID, "object": "chat.completion.chunk", "created": _CREATED, "model": MODEL}
        body["choices"] = choices
        if include_usage:
            body["usage"] = usage
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def delta(content: dict[str, str], finish: str | None = None) -> dict[str, object]:
        return {"index": 0, "delta": content, "finish_reason": finish}

    out = [chunk([delta({"role": "assistant", "content": ""})])]
    out += [chunk([delta({"content": piece})]) for piece in PIECES]
    out.append(chunk([delta({}, "stop")]))
    if include_usage:
        out.append(chunk([], USAGE))
    return [*out, b"data: [DONE]\n\n"]


def _response(status: bytes, content_type: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\ncontent-type: " + content_type
    return head + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def _stream_response(parts: list[bytes]) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache"
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
    return head + b"\r\ntransfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"


JSON = b"application/json"
COMPLETION = _response(b"200 OK", JSON, completion())
STREAM = _stream_response(events(include_usage=False))
STREAM_WITH_USAGE = _stream_response(events(include_usage=True))
MODELS = _response(
    b"200 OK", JSON, orjson.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]})
)
BAD_REQUEST = _response(b"400 Bad Request", JSON, b'{"error":{"message":"bad request"}}')


class Upstream(asyncio.Protocol):
    __slots__ = ("_body", "_parser", "_transport")

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._body: list[bytes] = []
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.write(BAD_REQUEST)
                self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._body.clear()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        transport = self._transport
        if transport is None:
            return
        if self._parser.get_method() != b"POST":
            transport.write(MODELS)
        else:
            transport.write(answer(b"".join(self._body)))
        if not self._parser.should_keep_alive():
            transport.close()


def answer(body: bytes) -> bytes:
    if b'"stream"' not in body:  # the common case costs no parsing
        return COMPLETION
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        return BAD_REQUEST
    if not request.get("stream"):
        return COMPLETION
    options = request.get("stream_options") or {}
    return STREAM_WITH_USAGE if options.get("include_usage") else STREAM


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, host, port, backlog=1024, reuse_address=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    print(f"upstream pid {os.getpid()} on http://{args.host}:{args.port}", flush=True)
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
