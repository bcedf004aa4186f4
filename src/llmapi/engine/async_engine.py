from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import AsyncGenerator
from collections.abc import Sequence as TokenIds
from dataclasses import dataclass, field

from llmapi.engine.engine_stats import EngineStats
from llmapi.engine.errors import EngineOverloadedError, EngineStoppedError
from llmapi.engine.llm_engine import LLMEngine
from llmapi.engine.output_stream import outputs_until_finished
from llmapi.engine.request_output import RequestOutput
from llmapi.engine.sampling_params import SamplingParams

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Stream:
    """Where one request's outputs go: a queue on the event loop that awaits them."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[RequestOutput | BaseException] = field(default_factory=asyncio.Queue)

    def put(self, item: RequestOutput | BaseException) -> None:
        # A closed event loop raises RuntimeError: nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


@dataclass(slots=True)
class _NewRequest:
    request_id: str
    prompt_token_ids: tuple[int, ...]
    params: SamplingParams


class AsyncEngine:
    """Drives an LLMEngine from one background thread and streams its outputs to asyncio consumers.

    The event loop only hands requests over and awaits queues; every model step runs in the engine thread,
    which sleeps while there is nothing to do.
    """

    def __init__(self, engine: LLMEngine, *, max_waiting: int) -> None:
        self.engine = engine
        self.max_waiting = max_waiting
        self._max_active = engine.scheduler.max_batch_size + max_waiting
        self._wakeup = threading.Condition()
        self._new: list[_NewRequest] = []
        self._aborted: list[str] = []
        self._streams: dict[str, _Stream] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def max_model_len(self) -> int:
        return self.engine.max_model_len

    @property
    def vocab_size(self) -> int:
        """Token ids the model scores (the tokenizer may know fewer)."""
        return self.engine.model_runner.vocab_size

    def stats(self) -> EngineStats:
        """A snapshot for metrics, read without stopping the engine thread."""
        with self._wakeup:
            active = len(self._streams)
        running = min(active, len(self.engine.scheduler.running))
        kv_cache_bytes = self.engine.model_runner.cache.allocated_bytes
        return EngineStats(running=running, waiting=active - running, kv_cache_bytes=kv_cache_bytes)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the engine is already started")
        self._thread = threading.Thread(target=self._run, name="llmapi-engine", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        with self._wakeup:
            streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream.put(EngineStoppedError(shutting_down=True))

    async def generate(
        self, prompt_token_ids: TokenIds[int], params: SamplingParams, request_id: str
    ) -> AsyncGenerator[RequestOutput, None]:
        """Stream a request's outputs; leaving the loop early (close, cancel) aborts the request.

        Raises EngineStoppedError or EngineOverloadedError when the request cannot be taken,
        PromptTooLongError when it does not fit, ConstraintError when its grammar cannot be enforced, and
        EngineStoppedError when the engine closes while it runs. A grammar not compiled yet is compiled in a
        worker thread first, so neither the event loop nor the engine's batch waits for it.
        """
        constraint = params.constraint
        if constraint is not None and not self.engine.grammars.is_prepared(constraint):
            await asyncio.to_thread(self.engine.grammars.prepare, constraint)
        stream = self._submit(_NewRequest(request_id, tuple(prompt_token_ids), params))
        abort = functools.partial(self._abort, request_id)
        async with contextlib.aclosing(outputs_until_finished(stream.queue, abort)) as outputs:
            async for output in outputs:
                yield output

    def _submit(self, request: _NewRequest) -> _Stream:
        stream = _Stream(asyncio.get_running_loop())
        with self._wakeup:
            if self._stopping or self._thread is None:
                raise EngineStoppedError(shutting_down=self._stopping)
            if request.request_id in self._streams:
                raise ValueError(f"request id {request.request_id!r} is already in use")
            if len(self._streams) >= self._max_active:
                raise EngineOverloadedError(self.max_waiting)
            self._streams[request.request_id] = stream
            self._new.append(request)
            self._wakeup.notify()
        return stream

    def _abort(self, request_id: str) -> None:
        with self._wakeup:
            if self._streams.pop(request_id, None) is not None:
                self._aborted.append(request_id)
                self._wakeup.notify()

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not (self._stopping or self._new or self._aborted or self.engine.has_unfinished()):
                    self._wakeup.wait()
                if self._stopping:
                    return
                new, self._new = self._new, []
                aborted, self._aborted = self._aborted, []
            for request in new:
                self._add(request)
            for request_id in aborted:
                self.engine.abort_request(request_id)
            if self.engine.has_unfinished():
                self._step()

    def _add(self, request: _NewRequest) -> None:
        try:
            self.engine.add_request(request.request_id, request.prompt_token_ids, request.params)
        except Exception as exc:
            self._finish(request.request_id, exc)

    def _step(self) -> None:
        try:
            outputs = self.engine.step()
        except Exception as exc:
            logger.exception("an engine step failed; its running requests fail with it")
            for request_id in self.engine.abort_running():
                self._finish(request_id, RuntimeError(f"generation failed inside the engine: {exc}"))
            return
        for output in outputs:
            if output.finished:
                self._finish(output.request_id, output)
            else:
                with self._wakeup:
                    stream = self._streams.get(output.request_id)
                if stream is not None:
                    stream.put(output)

    def _finish(self, request_id: str, item: RequestOutput | BaseException) -> None:
        with self._wakeup:
            stream = self._streams.pop(request_id, None)
        if stream is not None:
            stream.put(item)
