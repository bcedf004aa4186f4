"""A model served by a remote OpenAI-compatible engine (vLLM, TGI, SGLang, Ollama, another llmapi)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, get_args

import aiohttp
import orjson
from yarl import URL

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
from llmapi.backends.remote.responses import CompletionStream, parse_embeddings
from llmapi.backends.remote.upstream_errors import UpstreamErrors
from llmapi.config import ConfigError, ModelSpec, Task
from llmapi.engine.sampling_params import SamplingParams
from llmapi.errors import InvalidRequestError, ServiceUnavailableError, WrongTaskError
from llmapi.types import Feature

logger = logging.getLogger(__name__)

_MAX_ERROR_BODY = 64 * 1024
_MAX_BACKOFF_S = 2.0
_JSON = {"Content-Type": "application/json"}


class OpenAICompatBackend:
    """Text generation or embeddings through a remote engine's OpenAI-compatible API.

    Chat completions, completions and embeddings are passed through (`forward`, `forward_stream`: the
    client's request as sent, see `passthrough.py`). What is rebuilt from a prompt (`generate`, for
    `/v1/generate/text`) is always streamed upstream, so tokens pass through as they come. Closing a
    stream early closes the upstream connection, which makes the engine stop generating.
    """

    def __init__(self, spec: ModelSpec) -> None:
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
        )
        self._errors = UpstreamErrors(
            model=spec.id,
            upstream_model=options.upstream_model,
            origin=options.origin,
            timeout=options.timeout,
            connect_timeout=options.connect_timeout,
            secret=options.api_key,
        )
        self._chat_url = options.endpoint("chat/completions")
        self._completions_url = options.endpoint("completions")
        self._embeddings_url = options.endpoint("embeddings")
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
        logger.info("model %s: upstream %s, model %s", self._spec.id, self._options.origin, self._upstream)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncGenerator[GenerationChunk, None]:
        self._require_task("text-generation")
        url, payload = self._generation_request(prompt, params)
        stream = CompletionStream(chat=isinstance(prompt, ChatPrompt), errors=self._errors)
        with self._errors.translated():
            response = await self._post(url, orjson.dumps(payload), self._stream_timeout)
            complete = False
            try:
                if response.content_type == "application/json":
                    for text in stream.feed_document(await response.read()):
                        yield GenerationChunk(text)
                else:
                    async for data in response.content.iter_any():
                        for text in stream.feed(data):
                            yield GenerationChunk(text)
                final = stream.finish()
                complete = True
                yield final
            finally:
                # Closing (not releasing) an unfinished response drops the connection: the upstream sees
                # the disconnect and stops generating.
                if complete:
                    response.release()
                else:
                    response.close()

    async def forward(self, path: str, document: Mapping[str, Any]) -> ForwardedAnswer:
        body = request_body(document, upstream_model=self._upstream, stream=False)
        with self._errors.translated():
            response = await self._post(self._options.endpoint(path), body, self._call_timeout)
            try:
                raw = await response.read()
            finally:
                response.release()
        return answer(raw, model=self._spec.id, errors=self._errors)

    async def forward_stream(
        self, path: str, document: Mapping[str, Any], tally: StreamTally
    ) -> AsyncGenerator[bytes, None]:
        body = request_body(document, upstream_model=self._upstream, stream=True)
        events = EventStream(
            model=self._spec.id,
            include_usage=client_wants_usage(document),
            errors=self._errors,
            tally=tally,
        )
        with self._errors.translated():
            response = await self._post(self._options.endpoint(path), body, self._stream_timeout)
            try:
                if response.content_type == "application/json":  # an upstream that does not stream
                    raise self._errors.broken("it answered a stream request with one JSON document")
                async for data in response.content.iter_any():
                    for event in events.feed(data):
                        yield event
                for event in events.finish():
                    yield event
                if not events.done:
                    raise self._errors.broken("the stream ended without [DONE]")
            finally:
                if events.done:
                    response.release()
                else:
                    response.close()

    async def embed(self, inputs: Sequence[str]) -> Embeddings:
        self._require_task("embedding")
        if not inputs:
            return Embeddings(vectors=[], prompt_tokens=0)
        payload = {"model": self._upstream, "input": list(inputs), "encoding_format": "float"}
        with self._errors.translated():
            response = await self._post(self._embeddings_url, orjson.dumps(payload), self._call_timeout)
            try:
                body = await response.read()
            finally:
                response.release()
        return parse_embeddings(body, len(inputs), self._errors)

    @property
    def _upstream(self) -> str:
        return self._options.upstream_model

    def _require_task(self, task: Task) -> None:
        if self._spec.task != task:
            raise WrongTaskError(self._spec.id, self._spec.task, task)

    def _generation_request(self, prompt: Prompt, params: SamplingParams) -> tuple[URL, dict[str, Any]]:
        payload: dict[str, Any] = {"model": self._upstream}
        if isinstance(prompt, ChatPrompt):
            url = self._chat_url
            payload["messages"] = [{"role": m.role, "content": m.content} for m in prompt.messages]
        elif prompt.token_ids is not None:
            url = self._completions_url
            payload["prompt"] = list(prompt.token_ids)
        elif prompt.text is not None:
            url = self._completions_url
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

    async def _post(self, url: URL, body: bytes, limits: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        """POSTs JSON and returns the response if it is a 200; raises the mapped error otherwise."""
        session = self._session
        if session is None:
            raise ServiceUnavailableError(
                f"Model '{self._spec.id}' is not started (or is shutting down); retry in a moment."
            )
        response = await self._send(session, url, body, limits)
        if response.status == 200:
            return response
        try:
            body = await _read_at_most(response, _MAX_ERROR_BODY)
        finally:
            response.close()
        raise self._errors.from_status(response.status, body, response.headers)

    async def _send(
        self, session: aiohttp.ClientSession, url: URL, body: bytes, limits: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        """Retries only failures to connect: then nothing was sent, so a retry cannot run anything twice."""
        retries = self._options.max_retries
        attempt = 0
        while True:
            try:
                return await session.post(url, data=body, headers=_JSON, timeout=limits)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc, aiohttp.ClientSSLError) or attempt >= retries:
                    raise
                delay = min(0.1 * 2**attempt, _MAX_BACKOFF_S)
                attempt += 1
                logger.debug(
                    "model %s: upstream %s unreachable, retry %d of %d in %.1f s",
                    self._spec.id,
                    self._options.origin,
                    attempt,
                    retries,
                    delay,
                )
                await asyncio.sleep(delay)


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while size < limit and (part := await response.content.read(limit - size)):
        parts.append(part)
        size += len(part)
    return b"".join(parts)
