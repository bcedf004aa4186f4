from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

import huggingface_hub.constants
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from llmapi.backends.local import loader
from llmapi.backends.local.loader import configure_threads, load_causal_lm, pick_dtype
from llmapi.config import ConfigError
from llmapi.engine import kernel_choice

ASSETS = Path(loader.__file__).parent / "assets" / "gpt2-124m-random"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hub: huggingface_hub reads HF_HUB_OFFLINE once at import, so patch the constant as well."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def tiny_model_dir(tmp_path: Path) -> Path:
    """A small GPT-2 saved the way a user's local directory would hold it."""
    directory = tmp_path / "tiny-gpt2"
    config = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=8192)
    GPT2LMHeadModel(config).save_pretrained(directory)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(ASSETS / name, directory / name)
    return directory


@pytest.mark.parametrize(("setting", "expected"), [("float32", torch.float32), ("bfloat16", torch.bfloat16)])
def test_pick_dtype_honours_an_explicit_setting(
    setting: Literal["float32", "bfloat16"], expected: torch.dtype
) -> None:
    assert pick_dtype(setting) == expected


def test_pick_dtype_auto_loads_float32_on_cpu_for_the_measurement_to_settle() -> None:
    assert pick_dtype("auto") == torch.float32


@pytest.mark.parametrize("chosen", [torch.float32, torch.bfloat16])
def test_settle_dtype_auto_converts_to_the_measured_fastest(
    monkeypatch: pytest.MonkeyPatch, chosen: torch.dtype
) -> None:
    timed: list[list[tuple[int, int]]] = []

    def fastest(shapes: list[tuple[int, int]]) -> kernel_choice.DtypeChoice:
        timed.append(shapes)
        return kernel_choice.DtypeChoice(chosen, 0.5 if chosen == torch.bfloat16 else 3.0, 2, 0.01)

    monkeypatch.setattr(kernel_choice, "fastest_dtype", fastest)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 8))
    assert next(loader.settle_dtype(model, "auto").parameters()).dtype == chosen
    assert timed == [[(8, 16), (16, 8)]]


@pytest.mark.parametrize("setting", ["float32", "bfloat16"])
def test_settle_dtype_keeps_an_explicit_setting(monkeypatch: pytest.MonkeyPatch, setting: Any) -> None:
    monkeypatch.setattr(kernel_choice, "fastest_dtype", lambda shapes: pytest.fail("measured"))
    model = torch.nn.Linear(8, 8)
    assert loader.settle_dtype(model, setting) is model and model.weight.dtype == torch.float32


def test_builtin_source_builds_the_builtin_model() -> None:
    model, tokenizer = load_causal_lm("builtin:gpt2-124m-random", torch.bfloat16)
    assert model.dtype == torch.bfloat16
    assert len(tokenizer) == 8192


def test_unknown_builtin_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="built-in models are: gpt2-124m-random"):
        load_causal_lm("builtin:nope", torch.float32)


def test_loads_a_local_directory(offline: None, tiny_model_dir: Path) -> None:
    model, tokenizer = load_causal_lm(str(tiny_model_dir), torch.bfloat16)
    assert model.dtype == torch.bfloat16
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert tokenizer.decode(tokenizer.encode("naïve 👋")) == "naïve 👋"


def test_missing_local_path_says_what_to_check(offline: None, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match="not a directory") as caught:
        load_causal_lm(str(missing), torch.float32)
    assert str(missing) in str(caught.value)


def test_local_directory_without_weights_says_what_to_check(offline: None, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.json, the weights"):
        load_causal_lm(str(tmp_path), torch.float32)


def test_unreachable_hub_id_mentions_offline_mode(offline: None) -> None:
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE") as caught:
        load_causal_lm("llmapi-tests/no-such-model", torch.float32)
    assert "llmapi-tests/no-such-model" in str(caught.value)


def test_configure_threads_is_repeatable() -> None:
    before = torch.get_num_threads()
    try:
        configure_threads(1)
        configure_threads(1)
        assert torch.get_num_threads() == 1
        configure_threads(None)
        assert torch.get_num_threads() >= 1
    finally:
        torch.set_num_threads(before)
