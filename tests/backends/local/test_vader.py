from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llmapi.backends.base import SentimentBackend
from llmapi.backends.local.vader import INLINE_MAX_TEXTS, VaderSentimentBackend, sentiment_from_polarity
from llmapi.errors import ServiceUnavailableError
from llmapi.model_specs import ModelSpec

SPEC = ModelSpec(id="vader", task="sentiment", backend="vader")


@pytest.fixture(scope="module")
async def backend() -> AsyncIterator[VaderSentimentBackend]:
    loaded = VaderSentimentBackend(SPEC)
    await loaded.start()
    yield loaded
    await loaded.close()


async def test_describes_itself_as_a_sentiment_model(backend: VaderSentimentBackend) -> None:
    contract: SentimentBackend = backend
    card = contract.card
    assert (card.id, card.task, card.owned_by, card.context_length) == (
        "vader",
        "sentiment",
        "vadersentiment",
        None,
    )


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I love this phone, it is wonderful and works great!", "positive"),
        ("This is terrible. I hate it and want my money back.", "negative"),
        ("The meeting is at 3 pm in room 12.", "neutral"),
    ],
)
async def test_plain_sentences_get_the_right_label(
    backend: VaderSentimentBackend, text: str, label: str
) -> None:
    [result], tokens = await backend.analyze([text])
    assert result.label == label
    assert tokens == 0
    assert set(result.scores) == {"negative", "neutral", "positive"}
    assert sum(result.scores.values()) == pytest.approx(1.0, abs=0.01)
    assert 0.0 <= result.score <= 1.0


async def test_a_large_batch_keeps_order(backend: VaderSentimentBackend) -> None:
    texts = ["What a great day!", "Awful, just awful.", "It is a table."] * (INLINE_MAX_TEXTS + 1)
    results, tokens = await backend.analyze(texts)
    assert [r.label for r in results] == ["positive", "negative", "neutral"] * (INLINE_MAX_TEXTS + 1)
    assert tokens == 0


def test_score_is_the_compound_strength_and_neutral_its_complement() -> None:
    positive = sentiment_from_polarity({"neg": 0.0, "neu": 0.4, "pos": 0.6, "compound": 0.8})
    negative = sentiment_from_polarity({"neg": 0.5, "neu": 0.5, "pos": 0.0, "compound": -0.05})
    neutral = sentiment_from_polarity({"neg": 0.1, "neu": 0.8, "pos": 0.1, "compound": 0.04})
    assert (positive.label, positive.score) == ("positive", 0.8)
    assert (negative.label, negative.score) == ("negative", 0.05)
    assert neutral.label == "neutral"
    assert neutral.score == pytest.approx(0.96)
    assert neutral.scores == {"negative": 0.1, "neutral": 0.8, "positive": 0.1}


async def test_empty_text_is_wholly_neutral(backend: VaderSentimentBackend) -> None:
    [result], _ = await backend.analyze([""])
    assert (result.label, result.score) == ("neutral", 1.0)
    assert result.scores == {"negative": 0.0, "neutral": 1.0, "positive": 0.0}


async def test_analyzing_before_start_says_the_model_is_not_loaded() -> None:
    with pytest.raises(ServiceUnavailableError, match="not loaded"):
        await VaderSentimentBackend(SPEC).analyze(["hello"])
