"""The engine's own Llama-family code (Llama, SmolLM, Mistral, Qwen2, Qwen3) continues prompts exactly as
transformers' `generate` does (greedy, float32), and stays close to transformers' logits in bfloat16."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from tests.engine_greedy import engine_greedy
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from llmapi.backends.local.loader import load_causal_lm
from llmapi.engine.llm_engine import LLMEngine
from llmapi.engine.models import engine_model_for
from llmapi.engine.models.llama import LlamaModel
from llmapi.engine.sampling_params import SamplingParams
from llmapi.types import ModelCode

PROMPTS = ("def indent(text, prefix):", "x", "    lines = text.splitlines()", "return ''.join(")
SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
    "initializer_range": 0.3,
    "bos_token_id": None,
    "eos_token_id": None,
}
FAMILIES: dict[str, tuple[type[Any], type[Any], dict[str, Any]]] = {
    "llama-gqa-tied": (LlamaConfig, LlamaForCausalLM, {"tie_word_embeddings": True}),
    "llama-untied": (LlamaConfig, LlamaForCausalLM, {"num_key_value_heads": 4, "rms_norm_eps": 1e-5}),
    "llama-biases-llama3-rope": (
        LlamaConfig,
        LlamaForCausalLM,
        {
            "attention_bias": True,
            "mlp_bias": True,
            "head_dim": 32,
            "rope_parameters": {
                "rope_type": "llama3",
                "rope_theta": 500000.0,
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 32,
            },
        },
    ),
    "mistral": (MistralConfig, MistralForCausalLM, {"sliding_window": None, "head_dim": 16}),
    "qwen2-qkv-bias": (Qwen2Config, Qwen2ForCausalLM, {"tie_word_embeddings": False}),
    "qwen3-qk-norm": (Qwen3Config, Qwen3ForCausalLM, {"head_dim": 32}),
}


def tiny(family: str, vocab_size: int, dtype: torch.dtype = torch.float32) -> Any:
    """A 2-layer model of the family, its norms and biases random too (the defaults, ones and zeros, would
    hide a norm or a bias left out). Built in `dtype`, as loading does: `.to(torch.bfloat16)` would round
    transformers' rotary frequencies too, which loaded models keep in float32."""
    config_class, model_class, overrides = FAMILIES[family]
    torch.manual_seed(0)
    config = config_class(**{**SHAPE, **overrides, "vocab_size": vocab_size})
    model = model_class._from_config(config, dtype=dtype).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                parameter.normal_(0.0, 0.3)
    return model


def generate_greedy(model: Any, prompt: list[int], max_new_tokens: int) -> list[int]:
    """transformers' greedy continuation, through end-of-sequence tokens as the engine (eos None) goes."""
    reference = copy.deepcopy(model)
    reference.set_attn_implementation("sdpa")
    reference.generation_config.eos_token_id = None
    out = reference.generate(
        torch.tensor([prompt]), max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0
    )
    return [int(t) for t in out[0, len(prompt) :]]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_batched_greedy_output_equals_generate(tokenizer: Any, family: str) -> None:
    model = tiny(family, len(tokenizer))
    prompts = [tokenizer.encode(text) for text in PROMPTS]
    expected = [generate_greedy(model, prompt, 20) for prompt in prompts]
    engine, got = engine_greedy(model, tokenizer, prompts, 20)
    assert isinstance(engine.model_runner.own_model, LlamaModel)
    assert got == expected


@pytest.mark.parametrize("family", ["llama-gqa-tied", "qwen3-qk-norm"])
def test_prompts_read_in_small_chunks_give_the_same_tokens(tokenizer: Any, family: str) -> None:
    model = tiny(family, len(tokenizer))
    prompts = [tokenizer.encode(text * 3) for text in PROMPTS]
    expected = [generate_greedy(model, prompt, 12) for prompt in prompts]
    _, got = engine_greedy(model, tokenizer, prompts, 12, max_prefill_tokens=5)
    assert got == expected


def test_a_head_larger_than_the_tokenizer_is_cut_to_it(tokenizer: Any) -> None:
    model = tiny("llama-untied", len(tokenizer) + 100)
    engine = LLMEngine(model, tokenizer, vocab_size=len(tokenizer), eos_token_id=None, max_batch_size=1)
    own_model = engine.model_runner.own_model
    assert isinstance(own_model, LlamaModel)
    assert own_model.lm_head.out_features == len(tokenizer)
    engine.add_request("r", tokenizer.encode(PROMPTS[0]), SamplingParams(max_tokens=8, temperature=2.0))
    while engine.has_unfinished():
        assert all(t < len(tokenizer) for output in engine.step() for t in output.token_ids)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_engine_model_for_gives_the_own_module_for_each_family(tokenizer: Any, family: str) -> None:
    model = tiny(family, len(tokenizer))
    own = engine_model_for(model, vocab_size=len(tokenizer))
    assert isinstance(own, LlamaModel)
    assert (own.num_layers, own.num_kv_heads) == (2, model.config.num_key_value_heads)
    assert own.head_dim == model.model.layers[0].self_attn.head_dim


def test_the_transformers_model_code_gives_the_same_tokens(tokenizer: Any) -> None:
    prompts = [tokenizer.encode(text) for text in PROMPTS]
    _, own = engine_greedy(tiny("qwen3-qk-norm", len(tokenizer)), tokenizer, prompts, 16)
    engine, theirs = engine_greedy(
        tiny("qwen3-qk-norm", len(tokenizer)), tokenizer, prompts, 16, model_code="transformers"
    )
    assert engine.model_runner.own_model is None
    assert theirs == own


def test_a_rotary_embedding_that_changes_with_the_length_is_refused(tokenizer: Any) -> None:
    config = LlamaConfig(**{**SHAPE, "vocab_size": len(tokenizer)})
    config.rope_parameters = {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}
    with pytest.raises(ValueError, match="'dynamic'"):
        engine_model_for(LlamaForCausalLM(config), vocab_size=len(tokenizer))


def test_other_activations_are_refused(tokenizer: Any) -> None:
    model = LlamaForCausalLM(LlamaConfig(**{**SHAPE, "vocab_size": len(tokenizer), "hidden_act": "gelu"}))
    with pytest.raises(ValueError, match="MODEL_CODE=transformers"):
        engine_model_for(model, vocab_size=len(tokenizer))


def recorded_logits(engine: LLMEngine) -> list[torch.Tensor]:
    """Every step's logits from now on, as the model runner hands them to the sampler."""
    steps: list[torch.Tensor] = []
    run = engine.model_runner.run

    def recording(batch: Any) -> torch.Tensor:
        logits = run(batch)
        steps.append(logits.float())
        return logits

    engine.model_runner.run = recording  # type: ignore[method-assign]
    return steps


def greedy_logits(model: Any, tokenizer: Any, prompt: list[int], model_code: ModelCode) -> torch.Tensor:
    """The logits of each of 12 greedy steps [12, vocab], float32."""
    engine = LLMEngine(
        copy.deepcopy(model),
        tokenizer,
        vocab_size=len(tokenizer),
        eos_token_id=None,
        max_batch_size=1,
        model_code=model_code,
    )
    steps = recorded_logits(engine)
    engine.add_request("r", prompt, SamplingParams(max_tokens=12, temperature=0.0))
    while engine.has_unfinished():
        engine.step()
    return torch.cat(steps)


@pytest.mark.parametrize("family", ["llama-gqa-tied", "qwen2-qkv-bias", "qwen3-qk-norm"])
def test_bfloat16_logits_stay_close_to_transformers(tokenizer: Any, family: str) -> None:
    """A prompt and 12 greedy steps in bf16. Seen: the own code's logits equal, bit for bit, those of the
    engine running transformers' modules; against one transformers forward pass over the same tokens
    (other kernels, other rounding) they are at most 0.06-0.08 apart, 0.0004-0.010 on average, on logits of
    standard deviation 2.4-2.6."""
    model = tiny(family, len(tokenizer), torch.bfloat16)
    prompt = tokenizer.encode(PROMPTS[0] + PROMPTS[2])
    own = greedy_logits(model, tokenizer, prompt, "auto")
    theirs = greedy_logits(model, tokenizer, prompt, "transformers")
    generated = own.argmax(-1).tolist()
    reference = copy.deepcopy(model)
    reference.set_attn_implementation("sdpa")
    with torch.no_grad():
        forward = reference(torch.tensor([prompt + generated])).logits[0, len(prompt) - 1 : -1].float()
    spread = float(forward.std())
    assert float((own - theirs).abs().max()) < 0.02 * spread
    assert float((own - forward).abs().max()) < 0.1 * spread
    assert float((own - forward).abs().mean()) < 0.01 * spread


def test_the_real_smollm2_continues_as_generate_does() -> None:
    model, tokenizer = load_causal_lm("builtin:smollm2-135m-instruct", torch.float32)
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    prompts = [
        tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=False),
        tokenizer.encode("Once upon a time, there"),
    ]
    expected = [generate_greedy(model, prompt, 24) for prompt in prompts]
    engine, got = engine_greedy(model, tokenizer, prompts, 24)
    assert isinstance(engine.model_runner.own_model, LlamaModel)
    assert got == expected
    assert tokenizer.decode(got[0]).startswith("The capital of France is Paris.")
