"""What XML and Protobuf cost per request against JSON.

    .venv/bin/python -m bench.formats.run [--calls 2000] [--clients 16] [--duration 8]

1. In process: the work the negotiation middleware adds per request, for a chat request and answer and for
   an embeddings request of 16 inputs and its answer (16 x 384 floats): decoding the body (JSON: the checks;
   XML, Protobuf: decode and turn into JSON) and re-encoding the JSON answer (nothing for JSON). p50/p99 µs.
2. Over HTTP: requests/s of sentiment (VADER: the model costs little, so the format shows) and of embeddings
   (16 inputs; the answer is large) through `llmapi serve`, in each format, with an aiohttp load generator.
Writes results.md and results.json next to this file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import uvloop
from tests.api.keys import bearer
from tests.servers import ADMIN_KEY, llmapi_server

from bench.gateway.inprocess import quantiles
from bench.gateway.load import drive
from bench.gateway.report import _cpu_model
from llmapi.serialization.codec import Codec
from llmapi.serialization.json_codec import JSONCodec
from llmapi.serialization.protobuf_codec import ProtobufCodec
from llmapi.serialization.xml_codec import XMLCodec

HERE = Path(__file__).parent
CODECS: dict[str, Codec] = {"JSON": JSONCodec(), "XML": XMLCodec(), "Protobuf": ProtobufCodec()}
MEDIA_TYPES = {"JSON": "application/json", "XML": "application/xml", "Protobuf": "application/x-protobuf"}

CHAT_REQUEST = {
    "model": "gpt2-124m-random",
    "messages": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Summarise the plot of Hamlet in two sentences, please."},
    ],
    "max_tokens": 64,
    "temperature": 0,
}
CHAT_ANSWER = {
    "id": "chatcmpl-0123456789abcdef0123456789abcdef",
    "object": "chat.completion",
    "created": 1_790_000_000,
    "model": "gpt2-124m-random",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "A prince avenges his father. " * 8, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 31, "completion_tokens": 64, "total_tokens": 95},
}


def _vector(seed: int) -> list[float]:
    return [((seed * 7919 + j) % 1000) / 1000 - 0.5 for j in range(384)]


TEXTS = [f"Sentence number {i} is about the weather, which is lovely today." for i in range(16)]
EMBEDDINGS_REQUEST = {"model": "all-MiniLM-L6-v2", "input": TEXTS}
EMBEDDINGS_ANSWER = {
    "object": "list",
    "data": [
        {
            "object": "embedding",
            "embedding": [((i * 7919 + j) % 1000) / 1000 - 0.5 for j in range(384)],
            "index": i,
        }
        for i in range(16)
    ],
    "model": "all-MiniLM-L6-v2",
    "usage": {"prompt_tokens": 256, "total_tokens": 256},
}
SENTIMENT_REQUEST = {"texts": TEXTS[:4]}
CASES = [
    ("chat", CHAT_REQUEST, "ChatCompletionRequest", CHAT_ANSWER, "ChatCompletion"),
    ("embeddings, 16 inputs", EMBEDDINGS_REQUEST, "EmbeddingRequest", EMBEDDINGS_ANSWER, "EmbeddingList"),
]


def request_body(codec: Codec, request: dict[str, Any], message: str) -> bytes:
    """`request` as a client sends it (the XML codec writes answers: their root is <response>)."""
    body = codec.encode(request, message=message)
    if isinstance(codec, XMLCodec):
        body = body.replace(b"<response>", b"<request>").replace(b"</response>", b"</request>")
    return body


def _timed(call: Callable[[], object], calls: int) -> tuple[float, float]:
    for _ in range(100):
        call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e6)
    return quantiles(samples)


def in_process(calls: int) -> list[dict[str, Any]]:
    rows = []
    for case, request, request_message, answer, answer_message in CASES:
        for name, codec in CODECS.items():
            body = request_body(codec, request, request_message)
            json_answer = orjson.dumps(answer)

            def decode(codec: Codec = codec, body: bytes = body, message: str = request_message) -> object:
                data = codec.decode(body, message=message)
                return body if codec.media_type == "application/json" else orjson.dumps(data)

            def encode(
                codec: Codec = codec, raw: bytes = json_answer, message: str = answer_message
            ) -> object:
                if codec.media_type == "application/json":
                    return raw
                return codec.encode(orjson.loads(raw), message=message)

            request_p50, request_p99 = _timed(decode, calls)
            answer_p50, answer_p99 = _timed(encode, calls)
            rows.append(
                {
                    "case": case,
                    "format": name,
                    "request_bytes": len(body),
                    "answer_bytes": len(codec.encode(answer, message=answer_message)),
                    "request_p50_us": request_p50,
                    "request_p99_us": request_p99,
                    "answer_p50_us": answer_p50,
                    "answer_p99_us": answer_p99,
                }
            )
    return rows


def over_http(base_url: str, pid: int, clients: int, duration_s: float) -> list[dict[str, Any]]:
    rows = []
    endpoints = [
        ("sentiment, 4 texts", "/v1/analyze/sentiment", SENTIMENT_REQUEST, "SentimentRequest"),
        ("embeddings, 16 inputs", "/v1/embeddings", EMBEDDINGS_REQUEST, "EmbeddingRequest"),
    ]
    runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    for case, path, request, message in endpoints:
        for name, codec in CODECS.items():
            headers = {
                **bearer(ADMIN_KEY),
                "content-type": MEDIA_TYPES[name],
                "accept": MEDIA_TYPES[name],
                "cache-control": "no-cache, no-store",
            }
            load = runner.run(
                drive(
                    base_url + path,
                    request_body(codec, request, message),
                    headers,
                    server_pid=pid,
                    clients=clients,
                    duration_s=duration_s,
                    warmup_s=2.0,
                    expect_hit=False,
                )
            )
            if load.failures:
                raise RuntimeError(f"{case} in {name}: {load.failures} failures, first {load.first_failure}")
            rows.append(
                {
                    "case": case,
                    "format": name,
                    "requests_per_s": load.requests_per_s,
                    "p50_ms": load.p50_ms,
                    "p99_ms": load.p99_ms,
                    "server_cpu_us_per_request": load.server_cpu / load.requests_per_s * 1e6,
                }
            )
    return rows


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# What XML and Protobuf cost per request, against JSON",
        "",
        f"`{meta['command']}` on {meta['date']}, {meta['cpu']} (2 cores), Python {meta['python']}.",
        "",
        "## In process: the negotiation middleware's work per request",
        "",
        f"{meta['calls']:,} sequential calls per row after 100 warm-up calls. *Request*: JSON is checked "
        "(parsed by orjson for its encoding and depth) and passed on; XML and Protobuf are decoded and "
        "turned into the JSON the routes validate. *Answer*: JSON passes unchanged; XML and Protobuf are "
        "re-encoded from the route's JSON. Route validation and model work are the same in every format "
        "and are not in these figures.",
        "",
        "| case | format | request bytes | request p50 µs | request p99 µs | answer bytes "
        "| answer p50 µs | answer p99 µs |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["in_process"]:
        lines.append(
            f"| {r['case']} | {r['format']} | {r['request_bytes']:,} | {r['request_p50_us']:.0f} "
            f"| {r['request_p99_us']:.0f} | {r['answer_bytes']:,} | {r['answer_p50_us']:.0f} "
            f"| {r['answer_p99_us']:.0f} |"
        )
    lines += [
        "",
        "## Over HTTP: requests/s through `llmapi serve`",
        "",
        f"{meta['clients']} aiohttp clients on keep-alive connections for {meta['duration_s']:.0f} s each "
        "after a 2 s warm-up, the admin key (no limits), `Cache-Control: no-cache, no-store` so every "
        "request runs its model. The load generator shares the 2 cores with the server.",
        "",
        "| case | format | requests/s | p50 ms | p99 ms | server CPU µs / request |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results["http"]:
        lines.append(
            f"| {r['case']} | {r['format']} | {r['requests_per_s']:,.0f} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['server_cpu_us_per_request']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=8.0)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "meta": {
            "command": " ".join([".venv/bin/python -m bench.formats.run", *sys.argv[1:]]),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "calls": args.calls,
            "clients": args.clients,
            "duration_s": args.duration,
        }
    }
    results["in_process"] = in_process(args.calls)
    with tempfile.TemporaryDirectory() as tmp, llmapi_server(Path(tmp)) as server:
        results["http"] = over_http(server.base_url, server.process.pid, args.clients, args.duration)
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "results.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
