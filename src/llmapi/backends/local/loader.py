"""Load causal language models for the in-process engine: built-in, GGUF files (converted once into a
local cache), Hugging Face ids, local directories."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal, TypeVar, cast

import torch
from safetensors import SafetensorError
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from llmapi.backends.local import gguf_cache
from llmapi.backends.local.builtin import build_builtin_model
from llmapi.config import ConfigError
from llmapi.engine import kernel_choice

logger = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
_LOCAL_PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")
DEFAULT_MODEL_CACHE = Path("~/.cache/llmapi/models")
M = TypeVar("M", bound=torch.nn.Module)


def pick_dtype(setting: Literal["auto", "float32", "bfloat16"]) -> torch.dtype:
    """The dtype to load in: an explicit setting wins; `auto` loads float32 on CPU (`settle_dtype` then
    measures which of float32 and bfloat16 runs faster) and bfloat16 on a GPU that has it."""
    if setting == "float32":
        return torch.float32
    if setting == "bfloat16":
        return torch.bfloat16
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def settle_dtype(model: M, setting: Literal["auto", "float32", "bfloat16"]) -> M:
    """The loaded model in the dtype it will run in. With `auto`, a float32 model on CPU is timed on its own
    linear shapes in float32 and bfloat16 (a fraction of a second) and converted if bfloat16 is clearly
    faster; the figures are logged."""
    parameter = next(model.parameters(), None)
    if setting != "auto" or parameter is None or parameter.dtype != torch.float32 or parameter.is_cuda:
        return model
    shapes = kernel_choice.linear_shapes(model)
    choice = kernel_choice.fastest_dtype(shapes)
    logger.info(
        "dtype auto: %s (bfloat16 takes %.2fx float32's time on this model's linear shapes %s at batch %s; "
        "%d timed in %.0f ms)",
        str(choice.dtype).removeprefix("torch."),
        choice.bfloat16_over_float32,
        shapes,
        " and ".join(map(str, kernel_choice.DECODE_BATCHES)),
        choice.timed,
        choice.seconds * 1000,
    )
    return model.to(choice.dtype) if choice.dtype != torch.float32 else model


def load_causal_lm(
    source: str,
    dtype: torch.dtype,
    *,
    trust_remote_code: bool = False,
    model_cache: Path = DEFAULT_MODEL_CACHE,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a model and its tokenizer, in eval mode without gradients.

    `source` is `builtin:NAME` (a GGUF file a package ships, or a model with random weights),
    `gguf:PATH`, a Hugging Face model id, or a local directory. A GGUF file is converted once into
    `model_cache` and read from there.
    """
    if source.startswith(BUILTIN_PREFIX) and source.removeprefix(BUILTIN_PREFIX) in gguf_cache.BUNDLED:
        return _load_gguf(source, dtype, model_cache)
    if source.startswith(BUILTIN_PREFIX):
        return build_builtin_model(source.removeprefix(BUILTIN_PREFIX), dtype)
    if source.startswith(gguf_cache.GGUF_PREFIX):
        return _load_gguf(source, dtype, model_cache)
    return _from_pretrained(source, _resolve(source), dtype, trust_remote_code=trust_remote_code)


def _load_gguf(
    source: str, dtype: torch.dtype, model_cache: Path
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A GGUF model from its converted copy; a copy that does not load is converted again, once."""
    try:
        if source.startswith(BUILTIN_PREFIX):
            gguf_path = gguf_cache.bundled_gguf_path(source.removeprefix(BUILTIN_PREFIX))
        else:
            gguf_path = Path(source.removeprefix(gguf_cache.GGUF_PREFIX))
        directory = gguf_cache.converted(gguf_path, model_cache)
        try:
            return _from_pretrained(source, str(directory), dtype)
        except (ConfigError, SafetensorError) as exc:
            logger.warning("the converted model in %s does not load (%s); converting again", directory, exc)
            gguf_cache.discard(directory)
        return _from_pretrained(source, str(gguf_cache.converted(gguf_path, model_cache)), dtype)
    except gguf_cache.ConversionError as exc:
        raise ConfigError(f"model source '{source}': {exc}") from exc


def _from_pretrained(
    source: str, location: str, dtype: torch.dtype, *, trust_remote_code: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    try:
        model = cast(
            PreTrainedModel,
            AutoModelForCausalLM.from_pretrained(location, dtype=dtype, trust_remote_code=trust_remote_code),
        )
        tokenizer = cast(
            PreTrainedTokenizerBase,
            AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code),
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(_load_failure_message(source, location, exc)) from exc
    model.requires_grad_(False)
    model.train(False)
    return model, tokenizer


def _resolve(source: str) -> str:
    """A local path, expanded and checked to exist; a Hugging Face id, unchanged."""
    if not source.startswith(_LOCAL_PATH_PREFIXES):
        return source
    path = Path(source).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"model source '{source}' looks like a local path, but {path} is not a directory; "
            "point `source` at a directory holding config.json, the weights and the tokenizer files"
        )
    return str(path)


def _load_failure_message(source: str, location: str, exc: Exception) -> str:
    reason = str(exc).rstrip(". \n")
    if Path(location).is_dir():
        return (
            f"could not load the model in local directory {location}: {reason}. Check that it holds "
            "config.json, the weights (*.safetensors or *.bin) and the tokenizer files"
        )
    return (
        f"could not load model '{source}': {reason}. Check that it names an existing local directory, or a "
        "Hugging Face model id that is reachable: the hub must be online, or the model already in the local "
        "cache when HF_HUB_OFFLINE=1 is set"
    )


def describe(model: torch.nn.Module) -> tuple[str | None, int]:
    """The model's architecture (`llama`, `gpt2`) and its parameter count, tied weights counted once."""
    config = getattr(model, "config", None)
    family = getattr(config, "model_type", None)
    parameters = sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once
    return (str(family) if family else None), parameters


def configure_threads(threads: int | None) -> None:
    """Set the threads torch computes with: the given count, or one per CPU. Safe to call again.

    One per CPU is not measured at start: a 1-vs-all timing of a few matmuls says little about a step,
    which also pays thread-team start-up per op, and would be skewed by whatever else runs at start-up
    (bench/engine_levers measures the `threads` lever on whole steps)."""
    torch.set_num_threads(threads or os.cpu_count() or 1)
