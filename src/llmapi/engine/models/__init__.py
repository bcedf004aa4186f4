"""The engine's own model code: causal LMs written for packed forward passes over the engine's KV cache.

`engine_model_for` takes over a loaded transformers model's weights (however they were loaded: safetensors,
GGUF through transformers, the built-in models) into the engine's module for its family, or returns None
for architectures without one, which keep running through transformers and the slot attention.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llmapi.engine.models.engine_model import EngineModel
from llmapi.engine.models.gpt2 import build_gpt2
from llmapi.engine.models.llama_takeover import build_llama

Builder = Callable[[torch.nn.Module, int], EngineModel]

_FAMILIES: dict[str, Builder] = {
    "gpt2": build_gpt2,
    "llama": build_llama,
    "mistral": build_llama,
    "qwen2": build_llama,
    "qwen3": build_llama,
}


def engine_model_for(model: torch.nn.Module, *, vocab_size: int) -> EngineModel | None:
    """The engine's own module for `model` (its logits cut to `vocab_size` rows), or None."""
    config = getattr(model, "config", None)
    build = _FAMILIES.get(str(getattr(config, "model_type", "")))
    return None if build is None else build(model, vocab_size)
