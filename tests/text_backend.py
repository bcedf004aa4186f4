"""A text-generation backend for tests of everything above the engine: it answers every prompt with the
same words, a token each, as a real backend streams them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from llmapi.backends.base import ChatPrompt, GenerationChunk, ModelCard, Prompt
from llmapi.engine.sampling_params import SamplingParams
from llmapi.engine.token_logprob import TokenLogprob, TopLogprob

WORDS = ("The", " capital", " of", " France", " is", " Paris", ".")


class ScriptedTextBackend:
    def __init__(self, model_id: str = "scripted", *, delay_s: float = 0.0) -> None:
        self._card = ModelCard(
            id=model_id, task="text-generation", owned_by="tests", created=int(time.time())
        )
        self.delay_s = delay_s
        self.prompts: list[Prompt] = []

    @property
    def card(self) -> ModelCard:
        return self._card

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncIterator[GenerationChunk]:
        self.prompts.append(prompt)
        prompt_tokens = len(prompt.messages) * 4 if isinstance(prompt, ChatPrompt) else 3
        words = WORDS[: params.max_tokens]
        for i, word in enumerate(words, start=1):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            done = i == len(words)
            finish = ("length" if len(words) < len(WORDS) else "stop") if done else None
            logprobs = () if params.logprobs is None else (_logprob(i, word, params.logprobs),)
            yield GenerationChunk(word, finish, prompt_tokens if done else 0, i if done else 0, logprobs)


def _logprob(position: int, word: str, alternatives: int) -> TokenLogprob:
    """Word i (from 1) has log probability -i/10; its alternatives are made-up tokens below it."""
    offset = sum(len(w) for w in WORDS[: position - 1])
    top = tuple(
        TopLogprob(k, f"alt{k}", tuple(f"alt{k}".encode()), -position / 10 - k) for k in range(alternatives)
    )
    return TokenLogprob(position, word, tuple(word.encode()), -position / 10, offset, top)
