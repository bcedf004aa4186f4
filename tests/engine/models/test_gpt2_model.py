"""The engine's own GPT-2 continues prompts exactly as transformers' `generate` does (greedy, float32)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from tests.engine_greedy import engine_greedy
from transformers import GPT2Config, GPT2LMHeadModel

from llmapi.backends.local.builtin import build_builtin_model
from llmapi.engine.models.gpt2 import GPT2Model

PROMPTS = ("def indent(text, prefix):", "x", "    lines = text.splitlines()", "return ''.join(")


def tiny_gpt2(vocab_size: int, **overrides: Any) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=2,
        n_embd=64,
        n_head=4,
        vocab_size=vocab_size,
        n_positions=128,
        initializer_range=0.3,
        bos_token_id=None,
        eos_token_id=None,
        **overrides,
    )
    return GPT2LMHeadModel(config).eval()


def generate_greedy(model: Any, prompt: list[int], max_new_tokens: int, vocab_size: int) -> list[int]:
    """transformers' greedy continuation, over the first `vocab_size` ids (the engine's trimmed head)."""
    reference = copy.deepcopy(model)
    reference.set_attn_implementation("sdpa")
    beyond = list(range(vocab_size, reference.config.vocab_size))
    out = reference.generate(
        torch.tensor([prompt]),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        suppress_tokens=beyond or None,
        pad_token_id=0,
    )
    return [int(t) for t in out[0, len(prompt) :]]


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"activation_function": "gelu"},
        {"activation_function": "relu", "scale_attn_by_inverse_layer_idx": True, "n_inner": 96},
    ],
    ids=["gelu_new", "gelu", "relu-scaled-by-layer"],
)
def test_batched_greedy_output_equals_generate(tokenizer: Any, overrides: dict[str, Any]) -> None:
    model = tiny_gpt2(len(tokenizer), **overrides)
    prompts = [tokenizer.encode(text) for text in PROMPTS]
    expected = [generate_greedy(model, prompt, 20, len(tokenizer)) for prompt in prompts]
    engine, got = engine_greedy(model, tokenizer, prompts, 20)
    assert isinstance(engine.model_runner.own_model, GPT2Model)
    assert got == expected


def test_prompts_read_in_small_chunks_give_the_same_tokens(tokenizer: Any) -> None:
    model = tiny_gpt2(len(tokenizer))
    prompts = [tokenizer.encode(text * 3) for text in PROMPTS]
    expected = [generate_greedy(model, prompt, 12, len(tokenizer)) for prompt in prompts]
    _, got = engine_greedy(model, tokenizer, prompts, 12, max_prefill_tokens=5)
    assert got == expected


def test_a_head_larger_than_the_tokenizer_is_cut_to_it(tokenizer: Any) -> None:
    model = tiny_gpt2(len(tokenizer) + 100)
    prompts = [tokenizer.encode(text) for text in PROMPTS[:2]]
    expected = [generate_greedy(model, prompt, 16, len(tokenizer)) for prompt in prompts]
    engine, got = engine_greedy(model, tokenizer, prompts, 16)
    own_model = engine.model_runner.own_model
    assert isinstance(own_model, GPT2Model)
    assert own_model.lm_head.out_features == len(tokenizer)
    assert got == expected


def test_the_transformers_model_code_gives_the_same_tokens(tokenizer: Any) -> None:
    prompts = [tokenizer.encode(text) for text in PROMPTS]
    _, own = engine_greedy(tiny_gpt2(len(tokenizer)), tokenizer, prompts, 16)
    engine, theirs = engine_greedy(
        tiny_gpt2(len(tokenizer)), tokenizer, prompts, 16, model_code="transformers"
    )
    assert engine.model_runner.own_model is None
    assert theirs == own


def test_the_builtin_gpt2_small_equals_generate() -> None:
    model, tokenizer = build_builtin_model("gpt2-124m-random", torch.float32)
    prompts = [tokenizer.encode(text) for text in ("The capital of France is", "Once upon a time, there")]
    expected = [generate_greedy(model, prompt, 24, len(tokenizer)) for prompt in prompts]
    _, got = engine_greedy(model, tokenizer, prompts, 24)
    assert got == expected
