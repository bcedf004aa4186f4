"""The engine in its own process: the HTTP process's event loop and the model loop stop sharing an
interpreter lock. The same interface as AsyncEngine; requests go down the pipe batched per event-loop turn,
outputs come back batched per engine step."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
from collections.abc import AsyncGenerator, Iterator, Mapping
from collections.abc import Sequence as TokenIds
from multiprocessing.connection import Connection
from typing import Any

from llmapi.engine.engine_core import BuildEngine, run_engine_core
from llmapi.engine.engine_messages import (
    STOP,
    LoadFailed,
    NewRequest,
    Ready,
    StepReport,
    Work,
    unpacked,
)
from llmapi.engine.engine_stats import EngineStats
from llmapi.engine.errors import EngineOverloadedError, EngineStoppedError
from llmapi.engine.llm_engine import StepObserver
from llmapi.engine.output_stream import outputs_until_finished
from llmapi.engine.request_output import RequestOutput
from llmapi.engine.sampling_params import SamplingParams

ENGINE_PROCESS_ENVIRONMENT: Mapping[str, str | None] = {"OMP_WAIT_POLICY": "PASSIVE"}
"""The engine process's environment differs from this one's by these (None: unset). `llmapi serve` sets
OMP_WAIT_POLICY=PASSIVE so that OpenMP threads do not spin against the event loop; the engine process has
no event loop to spin against (bench/engine_levers/engine_process.py measured the policies)."""

STOP_SECONDS = 10.0
"""How long close() waits for the engine process to finish its step and exit before killing it."""

Queue = asyncio.Queue[RequestOutput | BaseException]


class EngineProcess:
    """Runs the engine core in a spawned process (never forked: this process has torch threads and an event
    loop) and streams its outputs to asyncio consumers. The process loads the model itself from `build`,
    which must pickle (a module-level function, or a functools.partial of one); it exits when closed, and
    on its own when this process dies (its pipe closes)."""

    def __init__(
        self,
        build: BuildEngine,
        *,
        max_batch_size: int,
        max_waiting: int,
        observer: StepObserver | None = None,
        environment: Mapping[str, str | None] = ENGINE_PROCESS_ENVIRONMENT,
    ) -> None:
        self._build = build
        self.max_waiting = max_waiting
        self._max_active = max_batch_size + max_waiting
        self._observer = observer
        self._environment = environment
        self._process: multiprocessing.process.BaseProcess | None = None
        self._connection: Connection | None = None
        self._streams: dict[str, Queue] = {}
        self._new: list[NewRequest] = []
        self._aborted: list[str] = []
        self._flush_scheduled = False
        self._running = 0
        self._stopping = False
        self._exited = False
        self.max_model_len = 0
        self.vocab_size = 0

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def stats(self) -> EngineStats:
        active = len(self._streams)
        running = min(active, self._running)
        return EngineStats(running=running, waiting=active - running)

    async def start(self) -> Any:
        """Start the process and wait until its model is loaded; returns the facts `build` returned.
        A load failure raises what loading raised in the process (ConfigError for a model that is not there).
        """
        if self._process is not None:
            raise RuntimeError("the engine is already started")
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=run_engine_core, args=(theirs, self._build), name="llmapi-engine", daemon=True
        )
        with _environment(self._environment):
            process.start()
        theirs.close()  # the process holds its end: ours reads end-of-file when it exits
        self._process, self._connection = process, ours
        try:
            message = await asyncio.to_thread(ours.recv)
        except asyncio.CancelledError:  # the server stops while the model loads
            process.kill()
            raise
        except (EOFError, OSError):
            await asyncio.to_thread(process.join)
            self._release()
            raise RuntimeError(
                f"the engine process exited while loading the model (exit code {process.exitcode})"
            ) from None
        if isinstance(message, LoadFailed):
            await asyncio.to_thread(process.join)
            self._release()
            raise message.error.rebuilt()
        if not isinstance(message, Ready):
            raise RuntimeError(f"the engine process sent {type(message).__name__} instead of Ready")
        self.max_model_len, self.vocab_size = message.max_model_len, message.vocab_size
        asyncio.get_running_loop().add_reader(ours.fileno(), self._receive)
        return message.facts

    async def close(self) -> None:
        self._stopping = True
        connection, process = self._connection, self._process
        if connection is not None and process is not None:
            asyncio.get_running_loop().remove_reader(connection.fileno())
            with contextlib.suppress(OSError):
                connection.send(STOP)
            await asyncio.to_thread(process.join, STOP_SECONDS)
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join)
        self._release()
        self._fail_all(EngineStoppedError(shutting_down=True))

    async def generate(
        self, prompt_token_ids: TokenIds[int], params: SamplingParams, request_id: str
    ) -> AsyncGenerator[RequestOutput, None]:
        """As AsyncEngine.generate; a request in flight when the engine process dies fails with
        RuntimeError."""
        queue = self._submit(NewRequest(request_id, tuple(prompt_token_ids), params))
        abort = functools.partial(self._abort, request_id)
        async with contextlib.aclosing(outputs_until_finished(queue, abort)) as outputs:
            async for output in outputs:
                yield output

    def _submit(self, request: NewRequest) -> Queue:
        if self._stopping or self._exited or self._connection is None:
            raise EngineStoppedError(shutting_down=self._stopping)
        if request.request_id in self._streams:
            raise ValueError(f"request id {request.request_id!r} is already in use")
        if len(self._streams) >= self._max_active:
            raise EngineOverloadedError(self.max_waiting)
        queue: Queue = asyncio.Queue()
        self._streams[request.request_id] = queue
        self._new.append(request)
        self._schedule_flush()
        return queue

    def _abort(self, request_id: str) -> None:
        if self._streams.pop(request_id, None) is not None:
            self._aborted.append(request_id)
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Send what this event-loop turn gathered as one message."""
        self._flush_scheduled = False
        new, self._new = tuple(self._new), []
        aborted, self._aborted = tuple(self._aborted), []
        if self._connection is None or self._exited or not (new or aborted):
            return
        try:
            self._connection.send(Work(new, aborted))
        except OSError:
            self._on_exit()

    def _receive(self) -> None:
        connection = self._connection
        try:
            while connection is not None and connection.poll():
                message = connection.recv()
                if isinstance(message, StepReport):
                    self._deliver(message)
        except (EOFError, OSError):
            self._on_exit()

    def _deliver(self, report: StepReport) -> None:
        if self._observer is not None:
            for step in report.steps:
                self._observer.on_step(
                    batch_size=step.batch_size,
                    decode_tokens=step.decode_tokens,
                    prefill_tokens=step.prefill_tokens,
                    seconds=step.seconds,
                )
        self._running = report.running
        for fields in report.outputs:
            output = unpacked(fields)
            request_id = output.request_id
            queue = self._streams.pop(request_id, None) if output.finished else self._streams.get(request_id)
            if queue is not None:
                queue.put_nowait(output)
        for request_id, error in report.failures:
            failed = self._streams.pop(request_id, None)
            if failed is not None:
                failed.put_nowait(error.rebuilt())

    def _on_exit(self) -> None:
        """The engine process is gone without being told to stop: its requests fail, new ones are refused."""
        if self._exited or self._stopping:
            return
        self._exited = True
        if self._connection is not None:
            asyncio.get_running_loop().remove_reader(self._connection.fileno())
        code = None if self._process is None else self._process.exitcode
        self._fail_all(RuntimeError(f"generation failed: the engine process exited (exit code {code})"))

    def _fail_all(self, error: BaseException) -> None:
        streams, self._streams = self._streams, {}
        for queue in streams.values():
            queue.put_nowait(error)

    def _release(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection, self._process = None, None


@contextlib.contextmanager
def _environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """os.environ changed by `values` (None: unset) while a process is spawned: it copies the environment."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        _update(values)
        yield
    finally:
        _update(saved)


def _update(values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
