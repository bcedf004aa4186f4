"""A model served by a remote OpenAI-compatible engine (vLLM, TGI, SGLang, Ollama, another llmapi)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, get_args

import aiohttp
import orjson

from llmapi.backends.base import (
    ChatPrompt,
    Embeddings,
    ForwardedAnswer,
    GenerationChunk,
    ModelCard,
    Prompt,
    StreamTally,
)
from llmapi.backends.remote.options import OpenAICompatOptions
from llmapi.backends.remote.passthrough import EventStream, answer, client_wants_usage, request_body
from llmapi.backends.remote.pool import UpstreamPool
from llmapi.backends.remote.responses import CompletionStream, parse_embeddings
from llmapi.backends.remote.upstream_errors import UpstreamErrors
from llmapi.config import ConfigError
from llmapi.engine.sampling_params import SamplingParams
from llmapi.errors import InvalidRequestError, ServiceUnavailableError, WrongTaskError
from llmapi.model_specs import ModelSpec, Task
from llmapi.observability.upstream_metrics import UpstreamMetrics
from llmapi.observability.upstream_wait import waiting_on_upstream
from llmapi.types import Feature

logger = logging.getLogger(__name__)

_MAX_ERROR_BODY = 64 * 1024
_JSON = {"Content-Type": "application/json"}


class OpenAICompatBackend:
    """Text generation or embeddings through a remote engine's OpenAI-compatible API.

    Chat completions, completions and embeddings are passed through (`forward`, `forward_stream`: the
    client's request as sent, see `passthrough.py`). What is rebuilt from a prompt (`generate`, for
    `/v1/generate/text`) is always streamed upstream, so tokens pass through as they come. Closing a
    stream early closes the upstream connection, which makes the engine stop generating.
    """

    def __init__(self, spec: ModelSpec, metrics: UpstreamMetrics | None = None) -> None:
        if spec.task not in ("text-generation", "embedding"):
            raise ConfigError(
                f"model '{spec.id}': an 'openai' backend serves text-generation or embedding, not {spec.task}"
            )
        self._spec = spec
        self._options = OpenAICompatOptions.from_spec(spec)
        options = self._options
        self._card = ModelCard(
            id=spec.id,
            task=spec.task,
            owned_by=options.owned_by,
            created=int(time.time()),
            context_length=options.context_length,
            features=frozenset(get_args(Feature)),
            description=spec.description,
        )
        self._errors = UpstreamErrors(
            model=spec.id,
            upstream_model=options.upstream_model,
            origin=", ".join(options.origins),
            timeout=options.timeout,
            connect_timeout=options.connect_timeout,
            secret=options.api_key,
        )
        self._pool = UpstreamPool(
            model=spec.id,
            base_urls=options.base_urls,
            max_retries=options.max_retries,
            breaker_failures=options.breaker_failures,
            breaker_reset_s=options.breaker_reset_s,
            metrics=metrics,
        )
        # A streamed generation may last long: `timeout` bounds the wait for each piece, not the whole.
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None,
            connect=options.timeout,
            sock_connect=options.connect_timeout,
            sock_read=options.timeout,
        )
        self._call_timeout = aiohttp.ClientTimeout(
            total=options.timeout, sock_connect=options.connect_timeout
        )
        self._session: aiohttp.ClientSession | None = None

    @property
    def card(self) -> ModelCard:
        return self._card

    @property
    def responses_api(self) -> bool:
        """Whether the upstream has the Responses API (`options.responses_api`): then `/v1/responses` is
        passed through to it rather than answered through chat completions."""
        return self._options.responses_api

    async def start(self) -> None:
        """Opens the connection pool. Connects lazily: the upstream need not be up yet."""
        if self._session is not None:
            return
        # Compressed event streams get buffered by the compressor; identity keeps tokens flowing.
        headers = {"Accept-Encoding": "identity"}
        if self._options.api_key:
            headers["Authorization"] = f"Bearer {self._options.api_key}"
        self._session = aiohttp.ClientSession(
            # Idle connections are dropped before uvicorn's 5 s keep-alive (vLLM, SGLang, llmapi) ends
            # them, so a request is never sent on a connection the upstream is closing.
            connector=aiohttp.TCPConnector(
                limit=self._options.max_connections, ttl_dns_cache=60, keepalive_timeout=4.0
            ),
            headers=headers,
        )
        logger.info(
            "model %s: upstream %s, model %s", self._spec.id, ", ".join(self._options.origins), self._upstream
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncGenerator[GenerationChunk, None]:
        self._require_task("text-generation")
        path, payload = self._generation_request(prompt, params)
        stream = CompletionStream(chat=isinstance(prompt, ChatPrompt), errors=self._errors)
        with self._errors.translated():
            async with self._call(path, orjson.dumps(payload), self._stream_timeout) as response:
                if response.content_type == "application/json":
                    for text in stream.feed_document(await _read(response)):
                        yield GenerationChunk(text)
                else:
                    while data := await _read_some(response):
                        for text in stream.feed(data):
                            yield GenerationChunk(text)
                yield stream.finish()

    async def forward(self, path: str, document: Mapping[str, Any]) -> ForwardedAnswer:
        body = request_body(document, path=path, upstream_model=self._upstream, stream=False)
        with self._errors.translated():
            async with self._call(path, body, self._call_timeout) as response:
                raw = await _read(response)
        return answer(raw, model=self._spec.id, errors=self._errors)

    async def forward_stream(
        self, path: str, document: Mapping[str, Any], tally: StreamTally
    ) -> AsyncGenerator[list[bytes], None]:
        body = request_body(document, path=path, upstream_model=self._upstream, stream=True)
        events = EventStream(
            model=self._spec.id,
            upstream_model=self._upstream,
            include_usage=client_wants_usage(path, document),
            errors=self._errors,
            tally=tally,
        )
        with self._errors.translated():
            async with self._call(path, body, self._stream_timeout) as response:
                if response.content_type == "application/json":
                    raise self._errors.broken("it answered a stream request with one JSON document")
                while data := await _read_some(response):
                    if batch := events.feed(data):
                        yield batch
                if batch := events.finish():
                    yield batch
                if not events.done:
                    raise self._errors.broken("the stream ended before its last event")

    async def embed(self, inputs: Sequence[str]) -> Embeddings:
        self._require_task("embedding")
        if not inputs:
            return Embeddings(vectors=[], prompt_tokens=0)
        payload = {"model": self._upstream, "input": list(inputs), "encoding_format": "float"}
        with self._errors.translated():
            async with self._call("embeddings", orjson.dumps(payload), self._call_timeout) as response:
                body = await _read(response)
        return parse_embeddings(body, len(inputs), self._errors)

    @property
    def _upstream(self) -> str:
        return self._options.upstream_model

    def _require_task(self, task: Task) -> None:
        if self._spec.task != task:
            raise WrongTaskError(self._spec.id, self._spec.task, task)

    def _generation_request(self, prompt: Prompt, params: SamplingParams) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {"model": self._upstream}
        if isinstance(prompt, ChatPrompt):
            url = "chat/completions"
            payload["messages"] = [{"role": m.role, "content": m.content} for m in prompt.messages]
        elif prompt.token_ids is not None:
            url = "completions"
            payload["prompt"] = list(prompt.token_ids)
        elif prompt.text is not None:
            url = "completions"
            payload["prompt"] = prompt.text
        else:
            raise InvalidRequestError("A text prompt needs text or token ids.", param="prompt")
        payload.update(
            stream=True,
            stream_options={"include_usage": True},
            n=1,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            presence_penalty=params.presence_penalty,
            frequency_penalty=params.frequency_penalty,
        )
        if params.seed is not None:
            payload["seed"] = params.seed
        if params.stop:
            payload["stop"] = list(params.stop)
        # Not OpenAI fields, but vLLM and SGLang accept them; only sent when asked for.
        if params.top_k > 0:
            payload["top_k"] = params.top_k
        if params.ignore_eos:
            payload["ignore_eos"] = True
        return url, payload

    @asynccontextmanager
    async def _call(
        self, path: str, body: bytes, limits: aiohttp.ClientTimeout
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POSTs `body` to a replica and yields its response if it is a 200; raises the mapped error
        otherwise. Leaving the block early drops the connection: the upstream sees it and stops."""
        session = self._session
        if session is None:
            raise ServiceUnavailableError(
                f"Model '{self._spec.id}' is not started (or is shutting down); retry in a moment."
            )
        async with self._pool.request(session, path, body, timeout=limits, headers=_JSON) as response:
            if response.status != 200:
                error = await _read_at_most(response, _MAX_ERROR_BODY)
                raise self._errors.from_status(response.status, error, response.headers)
            yield response


async def _read(response: aiohttp.ClientResponse) -> bytes:
    with waiting_on_upstream():
        return await response.read()


async def _read_some(response: aiohttp.ClientResponse) -> bytes:
    """What has arrived of the body, waiting for some; b"" at its end."""
    with waiting_on_upstream():
        return await response.content.readany()


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while size < limit and (part := await response.content.read(limit - size)):
        parts.append(part)
        size += len(part)
    return b"".join(parts)
