"""Logprobs and the end of turn with the real default chat model, through `llmapi serve` and the SDK."""

from __future__ import annotations

import math

import openai
from tests.conftest import OpenAISchemas
from tests.real_model import REAL_MODEL

CAPITAL = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


def test_chat_logprobs_line_up_with_an_answer_that_ends_at_its_end_of_turn(
    real_client: openai.OpenAI, openai_schemas: OpenAISchemas
) -> None:
    reply = real_client.chat.completions.create(
        model=REAL_MODEL, messages=CAPITAL, temperature=0, max_tokens=40, logprobs=True, top_logprobs=5
    )
    openai_schemas.validate("CreateChatCompletionResponse", reply.model_dump(exclude_unset=True))
    choice = reply.choices[0]
    content = choice.message.content or ""
    assert "Paris" in content
    assert choice.finish_reason == "stop"  # at <|im_end|>, well before max_tokens
    tokens = choice.logprobs.content  # type: ignore[union-attr]
    assert tokens is not None
    assert b"".join(bytes(t.bytes or []) for t in tokens).decode() == content
    assert len(tokens) == reply.usage.completion_tokens - 1  # type: ignore[union-attr]  # all but <|im_end|>
    paris = next(t for t in tokens if "Paris" in t.token)
    assert math.exp(paris.logprob) > 0.5  # the model is sure of it
    assert all(t.top_logprobs[0].token == t.token for t in tokens)  # greedy: each token is the likeliest


def test_completion_logprobs_of_the_real_model(
    real_client: openai.OpenAI, openai_schemas: OpenAISchemas
) -> None:
    reply = real_client.completions.create(
        model=REAL_MODEL, prompt="The capital of France is", max_tokens=3, temperature=0, logprobs=3
    )
    openai_schemas.validate("CreateCompletionResponse", reply.model_dump(exclude_unset=True))
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None and logprobs.tokens and logprobs.top_logprobs and logprobs.text_offset
    assert logprobs.tokens[0] == " Paris"
    assert max(logprobs.top_logprobs[0], key=logprobs.top_logprobs[0].__getitem__) == " Paris"
    assert "".join(logprobs.tokens) == reply.choices[0].text
    assert logprobs.text_offset == [
        sum(len(t) for t in logprobs.tokens[:i]) for i in range(len(logprobs.tokens))
    ]
