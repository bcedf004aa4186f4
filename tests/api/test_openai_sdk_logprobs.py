"""Logprobs and logit_bias through the official openai SDK against a running server, in OpenAI's shapes."""

from __future__ import annotations

import math

import openai
import pytest
from tests.conftest import OpenAISchemas

TEXT_MODEL = "gpt2-124m-random"
MESSAGES = [{"role": "user", "content": "Write a short story"}]


def test_chat_logprobs_with_top_logprobs_whole_and_streamed(
    client: openai.OpenAI, openai_schemas: OpenAISchemas
) -> None:
    whole = client.chat.completions.create(
        model=TEXT_MODEL, messages=MESSAGES, max_tokens=10, temperature=0, logprobs=True, top_logprobs=3, n=2
    )
    openai_schemas.validate("CreateChatCompletionResponse", whole.model_dump(exclude_unset=True))
    for choice in whole.choices:
        assert choice.logprobs is not None and choice.logprobs.content
        content = choice.logprobs.content
        assert choice.message.content == b"".join(bytes(t.bytes or []) for t in content).decode()
        assert len(content) == whole.usage.completion_tokens // 2  # type: ignore[union-attr]
        for token in content:
            assert len(token.top_logprobs) == 3
            assert token.top_logprobs[0].logprob == pytest.approx(token.logprob)  # greedy: the likeliest
            assert (
                token.top_logprobs[0].logprob
                >= token.top_logprobs[1].logprob
                >= token.top_logprobs[2].logprob
            )
            assert sum(math.exp(t.logprob) for t in token.top_logprobs) <= 1.0 + 1e-6
    chunks = list(
        client.chat.completions.create(
            model=TEXT_MODEL,
            messages=MESSAGES,
            max_tokens=10,
            temperature=0,
            logprobs=True,
            top_logprobs=3,
            stream=True,
        )
    )
    for chunk in chunks:
        openai_schemas.validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
    streamed = [
        t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content or []
    ]
    assert [(t.token, t.bytes) for t in streamed] == [
        (t.token, t.bytes) for t in whole.choices[0].logprobs.content
    ]  # type: ignore[union-attr]
    # bf16: the same up to rounding, which moves with what else shares the batch (here n=2 against 1).
    assert [t.logprob for t in streamed] == pytest.approx(
        [t.logprob for t in whole.choices[0].logprobs.content],  # type: ignore[union-attr]
        abs=0.05,
    )
    for chunk in chunks:  # each chunk carries the logprobs of the tokens whose text it brings
        if chunk.choices and chunk.choices[0].delta.content:
            got = chunk.choices[0].logprobs
            assert got is not None and got.content
            assert (
                b"".join(bytes(t.bytes or []) for t in got.content).decode() == chunk.choices[0].delta.content
            )


def test_chat_without_logprobs_has_none_and_top_logprobs_alone_is_a_400(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model=TEXT_MODEL, messages=MESSAGES, max_tokens=3, temperature=0)
    assert plain.choices[0].logprobs is None
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=TEXT_MODEL, messages=MESSAGES, max_tokens=3, top_logprobs=2)
    assert refused.value.body["param"] == "top_logprobs"  # type: ignore[index]


def test_completion_logprobs_whole_and_streamed(client: openai.OpenAI, openai_schemas: OpenAISchemas) -> None:
    whole = client.completions.create(
        model=TEXT_MODEL, prompt="def fib(n):", max_tokens=10, temperature=0, logprobs=2
    )
    openai_schemas.validate("CreateCompletionResponse", whole.model_dump(exclude_unset=True))
    logprobs = whole.choices[0].logprobs
    assert logprobs is not None and logprobs.tokens and logprobs.text_offset and logprobs.top_logprobs
    text = whole.choices[0].text
    assert len(logprobs.tokens) == len(logprobs.token_logprobs or []) == len(logprobs.top_logprobs)
    assert logprobs.text_offset[0] == 0 and logprobs.text_offset == sorted(logprobs.text_offset)
    assert all(
        len(top) <= 2 and max(top.values()) >= lp - 1e-6
        for top, lp in zip(logprobs.top_logprobs, logprobs.token_logprobs or [], strict=True)
    )
    assert logprobs.text_offset[-1] < len(text)
    chunks = list(
        client.completions.create(
            model=TEXT_MODEL, prompt="def fib(n):", max_tokens=10, temperature=0, logprobs=2, stream=True
        )
    )
    for chunk in chunks:
        body = chunk.model_dump(exclude_unset=True)
        for choice in body["choices"]:
            if choice["finish_reason"] is None:
                choice["finish_reason"] = "length"
        openai_schemas.validate("CreateCompletionResponse", body)
    streamed = [c.choices[0].logprobs for c in chunks if c.choices[0].logprobs]
    assert [t for lp in streamed for t in lp.tokens or []] == logprobs.tokens
    assert [o for lp in streamed for o in lp.text_offset or []] == logprobs.text_offset


def test_logit_bias_forces_a_token_and_ids_outside_the_vocabulary_are_a_400(client: openai.OpenAI) -> None:
    forced = client.completions.create(
        model=TEXT_MODEL, prompt="x", max_tokens=4, temperature=0, logit_bias={"1000": 100}, logprobs=0
    )
    tokens = forced.choices[0].logprobs.tokens  # type: ignore[union-attr]
    assert tokens is not None and len(tokens) == 4 and len(set(tokens)) == 1
    assert forced.choices[0].text == tokens[0] * 4
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model=TEXT_MODEL, prompt="x", max_tokens=2, logit_bias={"99999999": 5})
    assert refused.value.body["param"] == "logit_bias"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=TEXT_MODEL, prompt="x", max_tokens=2, logit_bias={"5": 101})
