from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from llmapi.engine.llm_engine import LLMEngine
from llmapi.engine.sampling_params import SamplingParams

Reference = Callable[[Any, list[int], int], list[int]]


def greedy_in_one_batch(
    model: Any, tokenizer: Any, prompts: list[list[int]], max_tokens: int
) -> list[list[int]]:
    engine = LLMEngine(model, tokenizer, vocab_size=len(tokenizer), eos_token_id=None, max_batch_size=4)
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    out: dict[str, list[int]] = {str(i): [] for i in range(len(prompts))}

    def step() -> None:
        for output in engine.step():
            out[output.request_id].extend(output.token_ids)

    engine.add_request("0", prompts[0], params)
    step()
    step()  # the others join a running batch, at different positions
    for i, prompt in enumerate(prompts[1:], start=1):
        engine.add_request(str(i), prompt, params)
    while engine.has_unfinished():
        step()
    return [out[str(i)] for i in range(len(prompts))]


def test_a_llama_shaped_model_with_grouped_kv_heads_batches_exactly(
    tokenizer: Any, hf_greedy: Reference
) -> None:
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=256,
        initializer_range=0.3,
        bos_token_id=None,
        eos_token_id=None,
    )
    model = LlamaForCausalLM(config).eval()
    prompts = [
        tokenizer.encode(t) for t in ("def indent(text, prefix):", "x", "    lines = text.splitlines()")
    ]
    expected = [hf_greedy(model, prompt, 16) for prompt in prompts]
    assert greedy_in_one_batch(model, tokenizer, prompts, 16) == expected


def test_logits_are_cut_to_the_tokenizer_vocabulary(tokenizer: Any, tiny_gpt2: Callable[..., Any]) -> None:
    model = tiny_gpt2(len(tokenizer) + 100)
    engine = LLMEngine(model, tokenizer, vocab_size=len(tokenizer), eos_token_id=None, max_batch_size=2)
    engine.add_request("r", [1, 2, 3], SamplingParams(max_tokens=30, temperature=2.0))
    assert engine.model_runner.vocab_size == len(tokenizer)
    while engine.has_unfinished():
        for output in engine.step():
            assert all(t < len(tokenizer) for t in output.token_ids)


def test_models_the_slot_attention_cannot_serve_are_refused(tokenizer: Any) -> None:
    config = LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, vocab_size=64
    )
    config.sliding_window = 16
    with pytest.raises(ValueError, match="sliding_window"):
        LLMEngine(LlamaForCausalLM(config), tokenizer, vocab_size=64, eos_token_id=None, max_batch_size=1)
