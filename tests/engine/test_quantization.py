"""Weight-only int8 and int4: each layer computes what its dequantized weight does, and a quantized model's
logits agree with the unquantized model's."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from llmapi.engine.int4_linear import Int4Linear, int4_group_size
from llmapi.engine.int8_linear import Int8Linear
from llmapi.engine.llm_engine import LLMEngine
from llmapi.engine.model_rewrites import conv1d_to_linear, quantize_linears_int4, quantize_linears_int8
from llmapi.engine.models import engine_model_for
from llmapi.engine.sampling_params import SamplingParams
from llmapi.types import ModelCode, Quantization

POSITIONS = 4 * 80


def random_linear(in_features: int, out_features: int, *, bias: bool) -> torch.nn.Linear:
    torch.manual_seed(0)
    return torch.nn.Linear(in_features, out_features, bias=bias).requires_grad_(False)


def int8_dequantized(layer: Int8Linear) -> torch.Tensor:
    return layer.qweight.float() * layer.scales.float()[:, None]


def int4_dequantized(layer: Int4Linear, q: torch.Tensor) -> torch.Tensor:
    scales, zeros = layer.scales_and_zeros.float().transpose(0, 1).unbind(dim=2)  # [out, groups] each
    groups = q.float().reshape(layer.out_features, -1, layer.group_size)
    return ((groups - 8) * scales[..., None] + zeros[..., None]).reshape(
        layer.out_features, layer.in_features
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int8_linear_computes_with_its_dequantized_weight(dtype: torch.dtype) -> None:
    linear = random_linear(192, 80, bias=True)
    layer = Int8Linear(linear)
    x = torch.randn(3, 5, 192).to(dtype)
    out = layer(x)
    assert out.dtype == dtype and out.shape == (3, 5, 80)
    expected = x.to(torch.bfloat16).float() @ int8_dequantized(layer).t() + linear.bias
    torch.testing.assert_close(out.float(), expected, rtol=0.02, atol=0.02)
    # and the dequantized weight is the original within half a quantization step per row
    step = linear.weight.abs().amax(dim=1, keepdim=True) / 127
    assert ((int8_dequantized(layer) - linear.weight).abs() <= step / 2 + 1e-3).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int4_linear_computes_with_its_dequantized_weight(dtype: torch.dtype) -> None:
    linear = random_linear(192, 80, bias=False)
    layer = Int4Linear(linear, group_size=64)
    x = torch.randn(7, 192).to(dtype)
    out = layer(x)
    assert out.dtype == dtype and out.shape == (7, 80)
    groups = linear.weight.reshape(80, 3, 64)
    low = groups.amin(dim=2, keepdim=True)
    scale = ((groups.amax(dim=2, keepdim=True) - low) / 15).clamp_min(1e-6)
    q = ((groups - low) / scale).round().clamp(0, 15).reshape(80, 192)
    weight = int4_dequantized(layer, q)
    assert ((weight - linear.weight).abs() <= scale.repeat_interleave(64, dim=2).reshape(80, 192)).all()
    expected = x.to(torch.bfloat16).float() @ weight.t()
    torch.testing.assert_close(out.float(), expected, rtol=0.02, atol=0.05)


def test_int4_group_size_fits_the_shape() -> None:
    assert int4_group_size(576, 1536) == 32 and int4_group_size(768, 2304) == 32
    assert int4_group_size(100, 32) is None and int4_group_size(64, 8) is None


def tiny_llama() -> Any:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=256,
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        initializer_range=0.1,  # logits spread out, as a trained model's do, so that top-1 is well defined
    )
    return AutoModelForCausalLM.from_config(config).eval().requires_grad_(False)


def all_logits(model: Any) -> torch.Tensor:
    token_ids = torch.randint(0, 256, (4, POSITIONS // 4), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        return model(input_ids=token_ids).logits.reshape(POSITIONS, -1).float()


@pytest.mark.parametrize(
    ("quantize", "min_top1", "max_mean_diff", "max_diff"),
    [(quantize_linears_int8, 0.9, 0.05, 0.4), (quantize_linears_int4, 0.35, 0.45, 4.0)],
)
def test_quantized_logits_agree_with_the_unquantized_model(
    quantize: Any, min_top1: float, max_mean_diff: float, max_diff: float
) -> None:
    """Top-1 agreement over 320 positions and |Δlogit| relative to the logits' spread (their std).

    Random weights are harder to quantize than trained ones (int4 keeps about half the top-1 here, 0.48,
    against 0.95 for int8); a kernel reading the weights wrongly agrees on about 1 position in 256."""
    model = tiny_llama()
    reference = all_logits(model)
    quantized_model = copy.deepcopy(model)
    head = 1 if quantize is quantize_linears_int8 else 0  # int4 keeps the output head in floating point
    assert quantize(quantized_model) == 2 * 7 + head  # q, k, v, o, gate, up, down per layer
    logits = all_logits(quantized_model)
    top1 = (logits.argmax(dim=-1) == reference.argmax(dim=-1)).float().mean().item()
    spread = reference.std().item()
    difference = (logits - reference).abs() / spread
    assert top1 >= min_top1, top1
    assert difference.mean().item() <= max_mean_diff, difference.mean().item()
    assert difference.max().item() <= max_diff, difference.max().item()


@pytest.mark.parametrize(
    ("quantize", "kind"), [(quantize_linears_int8, Int8Linear), (quantize_linears_int4, Int4Linear)]
)
def test_the_engines_own_model_code_is_quantized_whole(quantize: Any, kind: type) -> None:
    engine_model = engine_model_for(tiny_llama(), vocab_size=256)
    assert engine_model is not None
    quantize(engine_model)
    linears = [m for m in engine_model.modules() if type(m) is torch.nn.Linear]
    assert linears == ([] if kind is Int8Linear else [engine_model.lm_head])  # int4 keeps the head
    assert sum(isinstance(m, kind) for m in engine_model.modules()) >= 2 * 4  # the fused projections


def test_a_layer_the_int4_kernel_cannot_pack_stays_in_floating_point() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(100, 64), torch.nn.Linear(64, 32), torch.nn.Linear(32, 8))
    assert quantize_linears_int4(model) == 1
    assert type(model[0]) is torch.nn.Linear and type(model[2]) is torch.nn.Linear
    assert isinstance(model[1], Int4Linear)
    assert model(torch.randn(2, 100)).shape == (2, 8)


@pytest.mark.parametrize(
    ("quantization", "quantize", "kind"),
    [("int8", quantize_linears_int8, Int8Linear), ("int4", quantize_linears_int4, Int4Linear)],
)
@pytest.mark.parametrize("model_code", ["auto", "transformers"])
def test_the_engine_decodes_with_the_quantized_layers(
    tokenizer: Any,
    tiny_gpt2: Any,
    quantization: Quantization,
    quantize: Any,
    kind: type,
    model_code: ModelCode,
) -> None:
    """Greedy first tokens through LLMEngine equal those of the transformers model quantized alike."""
    prompts = [tokenizer.encode(text) for text in ("def fill(text):", "import os", "class A:", "x = [1, 2")]
    reference_model = tiny_gpt2(len(tokenizer))
    conv1d_to_linear(reference_model)
    quantize(reference_model)
    with torch.inference_mode():
        reference = [
            int(reference_model(input_ids=torch.tensor([p])).logits[0, -1].argmax()) for p in prompts
        ]
    engine = LLMEngine(
        tiny_gpt2(len(tokenizer)),
        tokenizer,
        vocab_size=len(tokenizer),
        eos_token_id=None,
        max_batch_size=4,
        quantization=quantization,
        model_code=model_code,
    )
    for i, prompt in enumerate(prompts):
        engine.add_request(str(i), prompt, SamplingParams(max_tokens=1, temperature=0.0, ignore_eos=True))
    first: dict[str, int] = {}
    while engine.has_unfinished():
        for out in engine.step():
            first.update({out.request_id: out.token_ids[0]} if out.token_ids else {})
    assert any(isinstance(m, kind) for m in engine.model_runner.model.modules())
    assert [first[str(i)] for i in range(len(prompts))] == reference
