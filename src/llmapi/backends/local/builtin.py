"""Built-in text models that need no download: known shapes with seeded random weights.

`gpt2-124m-random` has the shape of GPT-2 small (about 124M parameters) and a byte-level BPE tokenizer
trained on the Python standard library (`scripts/train_tokenizer.py`). The model's vocabulary (50,257 rows,
as in GPT-2) is larger than the tokenizer's (8,192), so the engine must only sample ids below
`len(tokenizer)`: it slices the logits to the tokenizer's size.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import cast

import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedModel, PreTrainedTokenizerFast

from llmapi.config import ConfigError

BUILTIN_MODELS = ("gpt2-124m-random",)
BUILTIN_NOTICE = (
    "The built-in text model has random weights: the text it writes is not meaningful. "
    "It exercises every real code path (tokenize, prefill, decode, sample, stream) with no download. "
    "To serve a real model, add an entry to the models file with `backend: transformers` and `source:` "
    "set to a Hugging Face model id or a local directory (see README)."
)
_SEED = 124
_INITIALIZER_RANGE = 0.02
_UNIFORM_BOUND_PER_STD = math.sqrt(3.0)  # U(-a, a) has standard deviation a / sqrt(3)


def build_builtin_model(name: str, dtype: torch.dtype) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Build a built-in model (the same weights on every call) in eval mode, and its tokenizer."""
    if name not in BUILTIN_MODELS:
        raise ConfigError(
            f"unknown built-in model '{name}'; the built-in models are: {', '.join(BUILTIN_MODELS)}"
        )
    tokenizer = _load_tokenizer(name)
    eos_id = tokenizer.eos_token_id
    config = GPT2Config(
        n_layer=12,
        n_head=12,
        n_embd=768,
        n_positions=1024,
        vocab_size=50257,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    with torch.device("meta"):
        model = GPT2LMHeadModel(config)
    model.type(dtype).to_empty(device="cpu")
    model.tie_weights()  # to_empty gives the tied embedding and head separate storage
    _init_weights(model, config.n_layer)
    model.requires_grad_(False)
    model.train(False)
    return model, tokenizer


def _load_tokenizer(name: str) -> PreTrainedTokenizerFast:
    with resources.as_file(resources.files(__package__) / "assets" / name) as directory:
        return cast(PreTrainedTokenizerFast, PreTrainedTokenizerFast.from_pretrained(Path(directory)))


def _init_weights(model: torch.nn.Module, n_layer: int) -> None:
    """GPT-2's initialisation scheme with uniform noise, from a private generator.

    Uniform noise with GPT-2's standard deviation is about three times faster to draw than normal noise
    on CPU. Values are drawn in float32 and then cast, so every dtype holds the same weights up to rounding.
    """
    generator = torch.Generator().manual_seed(_SEED)
    largest = max(param.numel() for param in model.parameters())
    scratch = torch.empty(largest, dtype=torch.float32)  # reused: fresh buffers cost page faults
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(".bias"):
                param.zero_()
            elif ".ln_" in name:
                param.fill_(1.0)
            else:
                std = _INITIALIZER_RANGE
                if name.endswith("c_proj.weight"):
                    std /= math.sqrt(2 * n_layer)  # residual projections, scaled for depth
                bound = std * _UNIFORM_BOUND_PER_STD
                noise = scratch[: param.numel()].uniform_(-bound, bound, generator=generator)
                param.copy_(noise.view(param.shape))
