"""Seeded benchmark prompts: windows of real text (Python's standard library) that render to 24-32 tokens.

Every system gets the same chat messages; the in-process baselines get the same rendered token ids. A new
seed per round gives new prompts, so no response or prefix cache can turn a round into a replay.
"""

from __future__ import annotations

import random
import sysconfig
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

MIN_TOKENS = 24
MAX_TOKENS = 32
_SOURCES = ("argparse.py", "textwrap.py", "difflib.py", "inspect.py")


@dataclass(frozen=True)
class Prompt:
    content: str  # the user message
    token_ids: tuple[int, ...]  # the chat-templated prompt, as the servers tokenize it


class PromptSource:
    """Draws prompts from the built-in model's tokenizer and a fixed corpus (no model weights needed)."""

    def __init__(self, model_name: str) -> None:
        from transformers import PreTrainedTokenizerFast

        with resources.as_file(resources.files("llmapi.backends.local") / "assets" / model_name) as path:
            self.tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        text = "\n".join((stdlib / name).read_text(encoding="utf-8") for name in _SOURCES)
        self._corpus: list[int] = self.tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids
        self._overhead = len(self._render("x")) - 1  # the chat template's own tokens

    def prompts(self, count: int, seed: int) -> list[Prompt]:
        """`count` prompts of MIN_TOKENS to MAX_TOKENS tokens once chat-templated; the same per seed."""
        rng = random.Random(seed)
        prompts: list[Prompt] = []
        while len(prompts) < count:
            target = rng.randint(MIN_TOKENS, MAX_TOKENS)
            start = rng.randrange(len(self._corpus) - MAX_TOKENS)
            content = self.tokenizer.decode(self._corpus[start : start + target - self._overhead])
            token_ids = self._render(content)
            if content.strip() and MIN_TOKENS <= len(token_ids) <= MAX_TOKENS:
                prompts.append(Prompt(content, tuple(token_ids)))
        return prompts

    def _render(self, content: str) -> list[int]:
        messages = [{"role": "user", "content": content}]
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(self.tokenizer.encode(text, add_special_tokens=False))
