"""An OpenAI-compatible upstream on loopback that records every request and answers like OpenAI: tool calls
when given tools, JSON when asked for structured output, logprobs when asked, streamed or not, with a vendor
extension field in every answer (which a faithful gateway passes on)."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

WORDS = ["The", " answer", " is", " 42", "."]
EXTENSION = {"vendor_extension": {"engine": "recording", "kv_cache_hit": True}}


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class RecordingUpstream:
    """`url` is the base URL (with /v1) to put in `options.base_url`; `requests` what reached it. Set `fail`
    to an HTTP status to answer every request with an OpenAI error of that status."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    fail: int | None = None
    delay_s: float = 0.0
    name: str = "recording"

    server: TestServer | None = None

    async def stop(self) -> None:
        """Stops listening and drops every connection, as a replica that dies does."""
        if self.server is not None:
            await self.server.close()

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(Recorded(request.path, body, dict(request.headers)))
        await asyncio.sleep(self.delay_s)
        if self.fail is not None:
            error = {
                "message": f"{self.name} fails on purpose",
                "type": "server_error",
                "param": None,
                "code": None,
            }
            return web.json_response({"error": error}, status=self.fail)
        if request.path.endswith("/embeddings"):
            return web.json_response(_embeddings(body))
        if request.path.endswith("/responses"):
            if body.get("stream"):
                return await _response_events(request, body)
            return web.json_response(_response(body))
        kind = "chat.completion" if request.path.endswith("/chat/completions") else "text_completion"
        if body.get("stream"):
            return await _stream(request, body, kind)
        return web.json_response(_whole(body, kind))


@asynccontextmanager
async def recording_upstream(name: str = "recording") -> AsyncIterator[RecordingUpstream]:
    upstream = RecordingUpstream(name=name)
    app = web.Application()
    app.router.add_post("/v1/{tail:.*}", upstream.handle)
    upstream.server = TestServer(app, host="127.0.0.1")
    await upstream.server.start_server()
    upstream.url = f"http://127.0.0.1:{upstream.server.port}/v1"
    try:
        yield upstream
    finally:
        await upstream.stop()


def _usage(body: dict[str, Any]) -> dict[str, int]:
    prompt = len(json.dumps(body.get("messages") or body.get("prompt") or body.get("input"))) // 4
    return {"prompt_tokens": prompt, "completion_tokens": len(WORDS), "total_tokens": prompt + len(WORDS)}


def _tool_call(body: dict[str, Any]) -> dict[str, Any]:
    name = body["tools"][0]["function"]["name"]
    return {"id": "call_0", "type": "function", "function": {"name": name, "arguments": '{"city": "Paris"}'}}


def _content(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        return json.dumps({"answer": 42})
    return "".join(WORDS)


def _logprobs(text: str) -> dict[str, Any]:
    entry = {"token": text, "logprob": -0.25, "bytes": list(text.encode())}
    return {"content": [{**entry, "top_logprobs": [entry]}], "refusal": None}


def _whole(body: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == "text_completion":
        choice: dict[str, Any] = {
            "index": 0,
            "text": "".join(WORDS),
            "logprobs": None,
            "finish_reason": "stop",
        }
    elif body.get("tools"):
        message = {"role": "assistant", "content": None, "tool_calls": [_tool_call(body)]}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
    else:
        content = _content(body)
        logprobs = _logprobs(content) if body.get("logprobs") else None
        message = {"role": "assistant", "content": content, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": logprobs, "finish_reason": "stop"}
    return {
        "id": "up-1",
        "object": kind,
        "created": 1_700_000_000,
        "model": body["model"],
        "system_fingerprint": "fp_recording",
        "choices": [choice],
        "usage": _usage(body),
        **EXTENSION,
    }


def _chunks(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    if kind == "text_completion":
        return [{"index": 0, "text": word, "logprobs": None, "finish_reason": None} for word in WORDS]
    if body.get("tools"):
        call = _tool_call(body)
        first = {**call, "index": 0, "function": {"name": call["function"]["name"], "arguments": ""}}
        pieces = ['{"city": ', '"Paris"}']
        deltas = [{"tool_calls": [first]}] + [
            {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]} for piece in pieces
        ]
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None} for delta in deltas]
    return [
        {
            "index": 0,
            "delta": {"content": word},
            "logprobs": _logprobs(word) if body.get("logprobs") else None,
            "finish_reason": None,
        }
        for word in WORDS
    ]


async def _stream(request: web.Request, body: dict[str, Any], kind: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    base = {"id": "up-1", "object": f"{kind}.chunk" if kind == "chat.completion" else kind}
    base |= {"created": 1_700_000_000, "model": body["model"], **EXTENSION}
    finish = "tool_calls" if body.get("tools") else "stop"
    choices = _chunks(body, kind)
    last = {"index": 0, "finish_reason": finish, "logprobs": None}
    last |= {"delta": {}} if kind == "chat.completion" else {"text": ""}
    for choice in [*choices, last]:
        await response.write(f"data: {json.dumps({**base, 'choices': [choice]})}\n\n".encode())
    if (body.get("stream_options") or {}).get("include_usage"):
        await response.write(
            f"data: {json.dumps({**base, 'choices': [], 'usage': _usage(body)})}\n\n".encode()
        )
    await response.write(b"data: [DONE]\n\n")
    return response


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    size = body.get("dimensions") or 4
    data = []
    for index, _ in enumerate(inputs):
        vector = [0.5] * size
        encoded: Any = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"{size}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    usage = {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)}
    return {"object": "list", "data": data, "model": body["model"], "usage": usage, **EXTENSION}


def _response(body: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    text = "".join(WORDS)
    message = {
        "type": "message",
        "id": "msg_up",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    return {
        "id": "resp_up",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": status,
        "model": body["model"],
        "output": [message] if status == "completed" else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": body.get("tools", []),
        "usage": {"input_tokens": 7, "output_tokens": len(WORDS), "total_tokens": 7 + len(WORDS)}
        if status == "completed"
        else None,
        **EXTENSION,
    }


async def _response_events(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    events: list[dict[str, Any]] = [{"type": "response.created", "response": _response(body, "in_progress")}]
    events += [
        {
            "type": "response.output_text.delta",
            "item_id": "msg_up",
            "output_index": 0,
            "content_index": 0,
            "delta": w,
        }
        for w in WORDS
    ]
    events.append({"type": "response.completed", "response": _response(body)})
    for number, event in enumerate(events):
        data = json.dumps({**event, "sequence_number": number})
        await response.write(f"event: {event['type']}\ndata: {data}\n\n".encode())
    return response
