"""Tiny models and a tokenizer trained on the spot: no download, float32 for exact comparisons."""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from llmapi.engine.llm_engine import LLMEngine

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """A byte-level BPE of 512 tokens; id 0 is <|endoftext|> (the EOS)."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(Path(textwrap.__file__).read_text().splitlines(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    fast.chat_template = CHATML
    return fast


@pytest.fixture(scope="session")
def tiny_gpt2() -> Callable[..., Any]:
    return build_tiny_gpt2


def build_tiny_gpt2(vocab_size: int, *, seed: int = 0, n_positions: int = 256) -> Any:
    """A 2-layer GPT-2 with weights large enough that greedy text does not collapse to one token."""
    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=2,
        n_embd=64,
        n_head=4,
        vocab_size=vocab_size,
        n_positions=n_positions,
        initializer_range=0.3,
        bos_token_id=None,
        eos_token_id=None,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="session")
def model(tokenizer: Any) -> Any:
    return build_tiny_gpt2(len(tokenizer))


@pytest.fixture
def make_engine(model: Any, tokenizer: Any) -> Callable[..., LLMEngine]:
    def make(max_batch_size: int = 8, **kwargs: Any) -> LLMEngine:
        return LLMEngine(
            model,
            tokenizer,
            vocab_size=len(tokenizer),
            eos_token_id=tokenizer.eos_token_id,
            max_batch_size=max_batch_size,
            **kwargs,
        )

    return make


@pytest.fixture(scope="session")
def hf_greedy() -> Callable[[Any, list[int], int], list[int]]:
    return greedy_reference


def greedy_reference(model: Any, prompt: list[int], max_new_tokens: int) -> list[int]:
    """Hugging Face's own greedy continuation: the reference for the engine's batched KV cache."""
    reference = copy.deepcopy(model)
    reference.set_attn_implementation("sdpa")
    out = reference.generate(torch.tensor([prompt]), max_new_tokens=max_new_tokens, do_sample=False)
    return [int(t) for t in out[0, len(prompt) :]]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from a second thread, and lose a lot when another process holds the core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
