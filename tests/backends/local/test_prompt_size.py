"""Huge prompts against the local text backend: one that cannot fit the context is refused before the
tokenizer sees it, and one that may fit is rendered and tokenized off the event loop."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.api.test_pipeline import LoopWatch
from tokenizers import Tokenizer
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

import llmapi.backends.local
from llmapi.backends.base import ChatMessage, ChatPrompt, GenerationChunk, Prompt, TextPrompt
from llmapi.backends.local.text import LocalTextBackend
from llmapi.backends.local.token_floor import TokenFloor
from llmapi.config import EngineSettings
from llmapi.engine.sampling_params import SamplingParams
from llmapi.errors import ContextLengthExceededError
from llmapi.model_specs import ModelSpec

ASSETS = Path(llmapi.backends.local.__file__).parent / "assets" / "gpt2-124m-random"
CONTEXT = 1024  # as the built-in gpt2-124m-random's
LONGEST_TOKEN = 64  # characters: the built-in tokenizer's longest token is 64 '#'
SPEC = ModelSpec(id="tiny", task="text-generation", backend="transformers", source="tiny-test-model")
HUGE = 700_000


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast.from_pretrained(ASSETS)


@pytest.fixture
async def backend(tokenizer: PreTrainedTokenizerFast) -> AsyncIterator[LocalTextBackend]:
    """The built-in model's tokenizer and context in front of a one-layer model (fast to prefill)."""
    torch.manual_seed(0)
    config = GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=len(tokenizer), n_positions=CONTEXT)
    model = GPT2LMHeadModel(config).eval()
    backend = LocalTextBackend(
        SPEC, EngineSettings(dtype="float32", max_batch_size=2), load=lambda source, dtype: (model, tokenizer)
    )
    await backend.start()
    yield backend
    await backend.close()


class EncodeSpy:
    """Records the threads the tokenizer encodes on; `delay_s` makes each encoding that much slower."""

    def __init__(self, tokenizer: Any, monkeypatch: pytest.MonkeyPatch, delay_s: float = 0.0) -> None:
        self.threads: list[threading.Thread] = []
        encode = tokenizer.encode

        def spying(*args: Any, **kwargs: Any) -> Any:
            self.threads.append(threading.current_thread())
            time.sleep(delay_s)
            return encode(*args, **kwargs)

        monkeypatch.setattr(tokenizer, "encode", spying)


async def generate(backend: LocalTextBackend, prompt: Prompt) -> list[GenerationChunk]:
    params = SamplingParams(max_tokens=1, ignore_eos=True)
    return [chunk async for chunk in backend.generate(prompt, params)]


def chat(content: str) -> ChatPrompt:
    return ChatPrompt(messages=(ChatMessage(role="user", content=content),))


@pytest.mark.parametrize(
    ("prompt", "param"), [(TextPrompt(text="x" * HUGE), "prompt"), (chat("x" * HUGE), "messages")]
)
async def test_a_prompt_that_cannot_fit_the_context_is_refused_without_tokenizing(
    backend: LocalTextBackend, monkeypatch: pytest.MonkeyPatch, prompt: Prompt, param: str
) -> None:
    spy = EncodeSpy(backend.tokenizer, monkeypatch)

    with pytest.raises(ContextLengthExceededError) as refused:
        await generate(backend, prompt)

    assert spy.threads == []
    assert refused.value.param == param
    fewest = re.search(r"has at least (\d+) tokens", refused.value.message)
    assert fewest is not None
    assert int(fewest.group(1)) >= -(-HUGE // LONGEST_TOKEN)


async def test_the_densest_prompt_that_fits_is_not_refused_by_the_bound(backend: LocalTextBackend) -> None:
    densest = "#" * (LONGEST_TOKEN * (CONTEXT - 1))  # 1023 tokens of 64 characters: room for one more

    chunks = await generate(backend, TextPrompt(text=densest))

    assert chunks[-1].prompt_tokens == CONTEXT - 1


@pytest.mark.parametrize("prompt", [TextPrompt(text="a" * 16_000), chat("a" * 15_900)])
async def test_a_large_prompt_is_tokenized_off_the_event_loop(
    backend: LocalTextBackend, monkeypatch: pytest.MonkeyPatch, prompt: Prompt
) -> None:
    spy = EncodeSpy(backend.tokenizer, monkeypatch, delay_s=0.3)  # a tokenizer as slow as a huge prompt's

    async with LoopWatch() as watch:
        chunks = await generate(backend, prompt)

    assert chunks[-1].finish_reason == "length"
    assert 990 < chunks[-1].prompt_tokens < CONTEXT
    assert threading.main_thread() not in spy.threads
    assert watch.longest_s < 0.1


def test_a_byte_level_bpe_has_a_floor_of_its_longest_token(tokenizer: PreTrainedTokenizerFast) -> None:
    assert TokenFloor.of(tokenizer).chars_per_token == LONGEST_TOKEN


def with_pipeline(tokenizer: PreTrainedTokenizerFast, **steps: Any) -> PreTrainedTokenizerFast:
    pipeline = json.loads(tokenizer.backend_tokenizer.to_str())
    pipeline.update(steps)
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(pipeline)))


@pytest.mark.parametrize(
    "steps",
    [
        {"pre_tokenizer": {"type": "WhitespaceSplit"}},  # a million spaces become no token at all
        {"normalizer": {"type": "NFC"}},  # composes characters: fewer come out than went in
        {
            "normalizer": {
                "type": "Sequence",
                "normalizers": [{"type": "Strip", "strip_left": True, "strip_right": True}],
            }
        },
        {"normalizer": {"type": "Replace", "pattern": {"String": "  "}, "content": " "}},
    ],
)
def test_a_tokenizer_that_can_drop_characters_has_no_floor(
    tokenizer: PreTrainedTokenizerFast, steps: dict[str, Any]
) -> None:
    assert TokenFloor.of(with_pipeline(tokenizer, **steps)).tokens_at_least("x" * HUGE) == 0


def test_a_tokenizer_that_only_lengthens_text_keeps_its_floor(tokenizer: PreTrainedTokenizerFast) -> None:
    lengthening = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "NFD"}]}

    floor = TokenFloor.of(with_pipeline(tokenizer, normalizer=lengthening))

    assert floor.tokens_at_least("x" * HUGE) == -(-HUGE // LONGEST_TOKEN)


def test_a_slow_tokenizer_has_no_floor() -> None:
    assert TokenFloor.of(object()).chars_per_token is None
