from __future__ import annotations

import pytest
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from llmapi.backends.local.builtin import BUILTIN_NOTICE, build_builtin_model
from llmapi.config import ConfigError

NAME = "gpt2-124m-random"
Built = tuple[PreTrainedModel, PreTrainedTokenizerFast]


@pytest.fixture(scope="module")
def built() -> Built:
    return build_builtin_model(NAME, torch.float32)


def test_the_same_weights_on_every_build(built: Built) -> None:
    model, _ = built
    again, _ = build_builtin_model(NAME, torch.float32)
    for name in ("transformer.wte.weight", "transformer.h.11.mlp.c_proj.weight"):
        assert torch.equal(model.get_parameter(name), again.get_parameter(name)), name


def test_building_leaves_the_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    build_builtin_model(NAME, torch.bfloat16)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_has_gpt2_small_shape_in_eval_mode(built: Built) -> None:
    model, _ = built
    parameters = sum(p.numel() for p in model.parameters())
    assert 123_000_000 < parameters < 126_000_000
    assert model.get_parameter("lm_head.weight") is model.get_parameter("transformer.wte.weight")
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_weights_follow_gpt2_initialisation(built: Built) -> None:
    model, _ = built
    embedding_std = model.get_parameter("transformer.wte.weight").std().item()
    assert embedding_std == pytest.approx(0.02, rel=0.01)
    assert torch.all(model.get_parameter("transformer.h.0.ln_1.weight") == 1)
    assert torch.all(model.get_parameter("transformer.h.0.attn.c_attn.bias") == 0)


def test_bfloat16_build_holds_the_same_weights_rounded(built: Built) -> None:
    model, _ = built
    half, _ = build_builtin_model(NAME, torch.bfloat16)
    name = "transformer.h.3.mlp.c_fc.weight"
    assert half.get_parameter(name).dtype == torch.bfloat16
    assert torch.equal(half.get_parameter(name), model.get_parameter(name).to(torch.bfloat16))


def test_forward_pass_gives_logits_over_the_model_vocabulary(built: Built) -> None:
    model, tokenizer = built
    ids = tokenizer("def main() -> None:", return_tensors="pt").input_ids
    with torch.inference_mode():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], 50257)
    assert torch.isfinite(logits).all()


def test_eos_is_the_same_for_model_and_tokenizer(built: Built) -> None:
    model, tokenizer = built
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert eos == 0
    assert tokenizer.eos_token_id == tokenizer.bos_token_id == tokenizer.pad_token_id == eos
    assert model.config.eos_token_id == model.config.bos_token_id == model.config.pad_token_id == eos
    assert model.generation_config.eos_token_id == eos


def test_tokenizer_is_smaller_than_the_model_vocabulary(built: Built) -> None:
    model, tokenizer = built
    assert len(tokenizer) == 8192 < model.config.vocab_size
    assert tokenizer.model_max_length == model.config.n_positions == 1024
    assert tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"]) == [1, 2]


@pytest.mark.parametrize(
    "text",
    [
        "Hello, world!",
        "  leading spaces, trailing spaces  \n\n",
        "héllo wörld — naïve café, 中文, 日本語, русский, العربية",
        "emoji: 👋🏽 🧑‍💻 🇳🇱 ✨",
        "def f(x: int) -> int:\n\treturn x ** 2  # square\r\n",
        'SELECT * FROM "t" WHERE a <> \'b\'; {"json": [1, 2.5, null]}',
        "\x00\x01\x7f zero-width\u200bjoiner \ufeff",
    ],
)
def test_tokenizer_round_trips_any_text(built: Built, text: str) -> None:
    _, tokenizer = built
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_tokenizer_adds_no_special_tokens_to_plain_text(built: Built) -> None:
    _, tokenizer = built
    ids = tokenizer.encode("plain text")
    assert tokenizer.eos_token_id not in ids
    assert all(i < len(tokenizer) for i in ids)


def test_chat_template_renders_chatml(built: Built) -> None:
    _, tokenizer = built
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi there"},
    ]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nHi there<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    without_prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    assert without_prompt == rendered.removesuffix("<|im_start|>assistant\n")


def test_unknown_builtin_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="gpt2-124m-random"):
        build_builtin_model("gpt2-xl-random", torch.float32)


def test_notice_says_the_output_is_not_meaningful() -> None:
    assert "random weights" in BUILTIN_NOTICE
    assert "not meaningful" in BUILTIN_NOTICE
    assert "backend: transformers" in BUILTIN_NOTICE
    assert "source:" in BUILTIN_NOTICE
