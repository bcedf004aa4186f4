"""Seeded benchmark prompts: windows of real text (Python's standard library) of 24-32 tokens.

Every system gets the same chat messages; the in-process baselines get the same rendered token ids. A new
seed per round gives new prompts, so no response or prefix cache can turn a round into a replay.
"""

from __future__ import annotations

import random
import sysconfig
from dataclasses import dataclass
from pathlib import Path

MIN_TOKENS = 24
MAX_TOKENS = 32
_SOURCES = ("argparse.py", "textwrap.py", "difflib.py", "inspect.py")


@dataclass(frozen=True)
class Prompt:
    content: str  # the user message
    token_ids: tuple[int, ...]  # the chat-templated prompt, as the servers tokenize it


class PromptSource:
    """Draws prompts from a model's tokenizer and a fixed corpus (no model weights needed)."""

    def __init__(self, tokenizer_dir: Path) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        text = "\n".join((stdlib / name).read_text(encoding="utf-8") for name in _SOURCES)
        self._corpus: list[int] = self.tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids

    def prompts(self, count: int, seed: int) -> list[Prompt]:
        """`count` user messages of MIN_TOKENS to MAX_TOKENS tokens (the chat template adds its own); the
        same per seed."""
        rng = random.Random(seed)
        prompts: list[Prompt] = []
        while len(prompts) < count:
            content = self.text(rng.randint(MIN_TOKENS, MAX_TOKENS), rng)
            if content.strip():
                prompts.append(Prompt(content, tuple(self._render(content))))
        return prompts

    def text(self, tokens: int, rng: random.Random) -> str:
        """A window of about `tokens` tokens of the corpus."""
        start = rng.randrange(len(self._corpus) - tokens)
        return str(self.tokenizer.decode(self._corpus[start : start + tokens]))

    def _render(self, content: str) -> list[int]:
        messages = [{"role": "user", "content": content}]
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(self.tokenizer.encode(text, add_special_tokens=False))
