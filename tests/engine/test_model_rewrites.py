from __future__ import annotations

from typing import Any

import pytest
import torch

from llmapi.backends.local.builtin import build_builtin_model
from llmapi.engine.int8_linear import Int8Linear
from llmapi.engine.model_rewrites import conv1d_to_linear, quantize_linears_int8


def last_token_logits(model: Any, prompts: list[list[int]]) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([model(input_ids=torch.tensor([p])).logits[:, -1].float() for p in prompts])


def test_conv1d_layers_become_linear_layers_computing_the_same(tiny_gpt2: Any) -> None:
    model = tiny_gpt2(64)
    model.set_attn_implementation("sdpa")
    prompts = [[1, 2, 3, 4], [5, 6, 7]]
    before = last_token_logits(model, prompts)
    assert conv1d_to_linear(model) == 2 * 4
    assert not any(type(m).__name__ == "Conv1D" for m in model.modules())
    torch.testing.assert_close(last_token_logits(model, prompts), before, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int8_logits_stay_close_to_the_unquantized_model(dtype: torch.dtype) -> None:
    """GPT-2 small's shape: cosine similarity of last-token logits, quantized vs not, over a few prompts."""
    model, tokenizer = build_builtin_model("gpt2-124m-random", dtype)
    model.set_attn_implementation("sdpa")
    generator = torch.Generator().manual_seed(3)
    prompts = [torch.randint(1, len(tokenizer), (n,), generator=generator).tolist() for n in (5, 17, 40)]
    reference = last_token_logits(model, prompts)
    conv1d_to_linear(model)
    assert quantize_linears_int8(model) == 12 * 4 + 1  # every layer's four projections and the head
    assert all(isinstance(m, Int8Linear) for m in (model.lm_head, model.transformer.h[0].mlp.c_fc))
    quantized = last_token_logits(model, prompts)
    cosine = torch.nn.functional.cosine_similarity(quantized, reference, dim=-1)
    assert cosine.min() > 0.99, cosine
