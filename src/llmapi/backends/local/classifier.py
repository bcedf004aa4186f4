"""Sentiment with a transformers text-classification model (a Hugging Face id or a local directory)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmapi.backends.base import ModelCard, Sentiment
from llmapi.config import ConfigError
from llmapi.errors import ServiceUnavailableError
from llmapi.model_specs import ModelSpec

logger = logging.getLogger(__name__)

BATCH_SIZE = 32
FALLBACK_MAX_LENGTH = 512
_SENTIMENT_NAMES = {
    "negative": "negative",
    "neg": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "positive": "positive",
    "pos": "positive",
}
_SENTIMENT_BY_INDEX = {2: ["negative", "positive"], 3: ["negative", "neutral", "positive"]}


def sentiment_labels(id2label: Mapping[int, str]) -> list[str]:
    """The label of each class, in class order.

    A 2- or 3-class head whose labels are sentiment names in any case ("NEGATIVE", "pos") gets them
    lower-cased; one with generic names ("LABEL_0", "LABEL_1"[, "LABEL_2"]) is read as negative,
    [neutral,] positive, the common convention. Any other head keeps the names the model gives.
    """
    names = [id2label[index] for index in range(len(id2label))]
    lowered = [name.lower() for name in names]
    if len(names) in _SENTIMENT_BY_INDEX:
        mapped = [_SENTIMENT_NAMES.get(name) for name in lowered]
        if None not in mapped and len(set(mapped)) == len(names):
            return [label for label in mapped if label is not None]
        if lowered == [f"label_{index}" for index in range(len(names))]:
            return list(_SENTIMENT_BY_INDEX[len(names)])
    return names


@dataclass(frozen=True, slots=True)
class _LoadedClassifier:
    tokenizer: Any
    model: Any
    labels: list[str]
    max_length: int


class TextClassificationBackend:
    """A SentimentBackend over AutoModelForSequenceClassification, on one dedicated worker thread.

    `score` is the probability of the top class and `scores` the softmax over all classes, keyed by
    label (see sentiment_labels). Texts longer than the model's maximum length are truncated.
    `threads` sets torch's intra-op thread count, which is process-wide.
    """

    def __init__(self, spec: ModelSpec, threads: int | None = None) -> None:
        self._spec = spec
        self._threads = threads
        self._created = int(time.time())
        self._loaded: _LoadedClassifier | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def card(self) -> ModelCard:
        context = self._loaded.max_length if self._loaded is not None else None
        return ModelCard(
            id=self._spec.id,
            task="sentiment",
            owned_by="transformers",
            created=self._created,
            context_length=context,
            description=self._spec.description,
        )

    async def start(self) -> None:
        if self._loaded is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"classify-{self._spec.id}")
        try:
            loaded = await asyncio.get_running_loop().run_in_executor(
                executor, _load_classifier, self._spec, self._threads
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._loaded, self._executor = loaded, executor

    async def close(self) -> None:
        executor, self._executor, self._loaded = self._executor, None, None
        if executor is not None:
            executor.shutdown(wait=False)

    async def analyze(self, texts: Sequence[str]) -> tuple[list[Sentiment], int]:
        loaded, executor = self._loaded, self._executor
        if loaded is None or executor is None:
            raise ServiceUnavailableError(f"The model '{self._spec.id}' is not loaded; retry shortly.")
        if not texts:
            return [], 0
        return await asyncio.get_running_loop().run_in_executor(executor, _classify, loaded, list(texts))


def _classify(loaded: _LoadedClassifier, texts: list[str]) -> tuple[list[Sentiment], int]:
    import torch

    results: list[Sentiment] = []
    tokens = 0
    for start in range(0, len(texts), BATCH_SIZE):
        encoded = loaded.tokenizer(
            texts[start : start + BATCH_SIZE],
            padding=True,
            truncation=True,
            max_length=loaded.max_length,
            return_tensors="pt",
        )
        with torch.inference_mode():
            logits = loaded.model(**encoded).logits
        tokens += int(encoded["attention_mask"].sum())
        for row in logits.float().softmax(dim=-1).tolist():
            scores = dict(zip(loaded.labels, row, strict=True))
            label = max(scores, key=scores.__getitem__)
            results.append(Sentiment(label=label, score=scores[label], scores=scores))
    return results, tokens


def _load_classifier(spec: ModelSpec, threads: int | None) -> _LoadedClassifier:
    try:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as exc:
        raise ConfigError(
            f"model '{spec.id}' needs transformers and torch; install them with pip install 'llmapi[local]'"
        ) from exc
    if threads is not None:
        torch.set_num_threads(threads)
    source, local_only = _resolve_source(spec)
    started = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        model = AutoModelForSequenceClassification.from_pretrained(source, local_files_only=local_only)
    except Exception as exc:
        raise ConfigError(
            f"model '{spec.id}': could not load a text-classification model from '{source}' ({exc}). "
            "Check that the source is a directory holding a sequence-classification model and its tokenizer "
            "or a Hugging Face model id, and that the hub is reachable or the model is cached "
            "(HF_HUB_OFFLINE=1 uses the cache only)."
        ) from exc
    model.eval()
    logger.info("loaded sentiment model %s from %s in %.1fs", spec.id, source, time.perf_counter() - started)
    return _LoadedClassifier(
        tokenizer=tokenizer,
        model=model,
        labels=sentiment_labels(model.config.id2label),
        max_length=_max_length(tokenizer.model_max_length, model.config),
    )


def _max_length(tokenizer_max: int, config: Any) -> int:
    """The tokenizer's limit when it states one (some say 1e30 for "none"), else the model's positions."""
    positions = getattr(config, "max_position_embeddings", None)
    if tokenizer_max < 1_000_000:
        return min(tokenizer_max, positions) if isinstance(positions, int) else tokenizer_max
    return positions if isinstance(positions, int) else FALLBACK_MAX_LENGTH


def _resolve_source(spec: ModelSpec) -> tuple[str, bool]:
    """Where to load from, and whether it is local (so the hub is never asked)."""
    if not spec.source:
        raise ConfigError(
            f"model '{spec.id}': a transformers sentiment model needs a source (model id or directory)"
        )
    path = Path(spec.source).expanduser()
    if path.is_dir():
        return str(path), True
    if spec.source.startswith(("/", ".", "~")):
        raise ConfigError(f"model '{spec.id}': source directory {path} does not exist")
    return spec.source, False
