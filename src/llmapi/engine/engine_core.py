"""The engine process's side: loads the model, steps the engine, and reports each step to the HTTP process.

Two threads: the inbox thread reads the pipe (and compiles grammars, so the batch never waits for one);
the main thread steps the engine and sends what each step produced as one message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from llmapi.engine.engine_messages import (
    LoadFailed,
    NewRequest,
    Ready,
    SentError,
    StepReport,
    StepStats,
    Work,
    packed,
)
from llmapi.engine.llm_engine import LLMEngine, StepObserver
from llmapi.engine.request_output import RequestOutput

logger = logging.getLogger(__name__)

BuildEngine = Callable[[StepObserver | None], tuple[LLMEngine, Any]]
"""Loads the model and builds the engine, telling steps to the given observer; returns the engine and the
picklable facts the HTTP process needs (its tokenizer, for one)."""


class StepRecorder:
    """A StepObserver that keeps the steps until the next report carries them."""

    def __init__(self) -> None:
        self.steps: list[StepStats] = []

    def on_step(self, *, batch_size: int, decode_tokens: int, prefill_tokens: int, seconds: float) -> None:
        self.steps.append(StepStats(batch_size, decode_tokens, prefill_tokens, seconds))

    def take(self) -> tuple[StepStats, ...]:
        steps, self.steps = tuple(self.steps), []
        return steps


def run_engine_core(connection: Connection, build: BuildEngine) -> None:
    """The engine process's entry point: returns when told to stop or when the HTTP process is gone."""
    recorder = StepRecorder()
    try:
        engine, facts = build(recorder)
    except BaseException as exc:  # the HTTP process raises it as loading in-thread would
        logger.exception("loading the model failed")
        connection.send(LoadFailed(SentError.of(exc)))
        return
    connection.send(Ready(facts, engine.max_model_len, engine.model_runner.vocab_size))
    EngineCore(engine, connection, recorder).run()


class EngineCore:
    def __init__(self, engine: LLMEngine, connection: Connection, recorder: StepRecorder) -> None:
        self.engine = engine
        self._connection = connection
        self._recorder = recorder
        self._wakeup = threading.Condition()
        self._new: list[NewRequest] = []
        self._aborted: list[str] = []
        self._failures: list[tuple[str, SentError]] = []
        self._stopping = False

    def run(self) -> None:
        threading.Thread(target=self._read_inbox, name="llmapi-engine-inbox", daemon=True).start()
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
            outputs = self._step() if self.engine.has_unfinished() else []
            with self._wakeup:
                failures, self._failures = tuple(self._failures), []
            if outputs or failures or self._recorder.steps:
                report = StepReport(
                    tuple(map(packed, outputs)), failures, self._recorder.take(), self._running()
                )
                try:
                    self._connection.send(report)
                except OSError:  # the HTTP process is gone
                    return

    def _running(self) -> int:
        return len(self.engine.scheduler.running)

    def _read_inbox(self) -> None:
        while True:
            try:
                message = self._connection.recv()
            except (EOFError, OSError):
                message = None  # the HTTP process closed the pipe, or died: stop as if told to
            if not isinstance(message, Work):
                with self._wakeup:
                    self._stopping = True
                    self._wakeup.notify()
                return
            self._prepare_grammars(message.new)
            with self._wakeup:
                self._new += message.new
                self._aborted += message.aborted
                self._wakeup.notify()

    def _prepare_grammars(self, requests: tuple[NewRequest, ...]) -> None:
        """Compile new constraints here; a request whose grammar fails is refused when it is added."""
        for request in requests:
            if request.params.constraint is not None:
                try:
                    self.engine.grammars.prepare(request.params.constraint)
                except Exception:  # add_request raises it again, and reports it
                    continue

    def _add(self, request: NewRequest) -> None:
        try:
            self.engine.add_request(request.request_id, request.prompt_token_ids, request.params)
        except Exception as exc:
            self._fail(request.request_id, exc)

    def _step(self) -> list[RequestOutput]:
        try:
            return self.engine.step()
        except Exception as exc:
            logger.exception("an engine step failed; its running requests fail with it")
            error = RuntimeError(f"generation failed inside the engine: {exc}")
            for request_id in self.engine.abort_running():
                self._fail(request_id, error)
            return []

    def _fail(self, request_id: str, exc: BaseException) -> None:
        with self._wakeup:
            self._failures.append((request_id, SentError.of(exc)))
