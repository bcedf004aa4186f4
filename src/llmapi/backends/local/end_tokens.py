"""The tokens that end a local model's answer, and stop strings that are really special tokens."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# End-of-turn markers of common chat templates (ChatML, Llama 3, Phi-3, Gemma): where a tokenizer has one
# as a single token, the model writes it when its answer is over.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


def end_token_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
    """The ids the model ends an answer with: its generation config's eos ids, the tokenizer's eos, and
    the end-of-turn markers the tokenizer has as special tokens."""
    found: list[int] = []
    generation_config = getattr(model, "generation_config", None)
    configured = getattr(generation_config, "eos_token_id", None)
    found += [configured] if isinstance(configured, int) else list(configured or ())
    if tokenizer.eos_token_id is not None:
        found.append(tokenizer.eos_token_id)
    found += special_token_ids(tokenizer, END_OF_TURN)
    vocabulary = len(tokenizer)
    return tuple(dict.fromkeys(int(t) for t in found if 0 <= int(t) < vocabulary))


def special_token_ids(tokenizer: Any, texts: Iterable[str]) -> list[int]:
    """The ids of those texts that are one special token each (their text never appears in the output, so
    as stop strings they could never match: they stop as tokens instead)."""
    special = set(getattr(tokenizer, "all_special_tokens", ()))
    special |= {str(token) for token in getattr(tokenizer, "added_tokens_decoder", {}).values()}
    ids = []
    for text in texts:
        if text in special:
            token_id = tokenizer.convert_tokens_to_ids(text)
            if isinstance(token_id, int) and token_id != getattr(tokenizer, "unk_token_id", None):
                ids.append(token_id)
    return ids
