"""The official openai SDK against a running server: shapes validated against OpenAI's own schema."""

from __future__ import annotations

import math

import openai
import pytest
from tests.conftest import OpenAISchemas

TEXT_MODEL = "gpt2-124m-random"
EMBEDDING_MODEL = "all-MiniLM-L6-v2"


def test_models_list_every_served_model_with_its_task(
    client: openai.OpenAI, openai_schemas: OpenAISchemas
) -> None:
    page = client.models.list()
    openai_schemas.validate("ListModelsResponse", page.model_dump())
    tasks = {model.id: model.model_extra["task"] for model in page.data if model.model_extra}
    assert tasks == {TEXT_MODEL: "text-generation", EMBEDDING_MODEL: "embedding", "vader": "sentiment"}


def test_model_retrieve(client: openai.OpenAI, openai_schemas: OpenAISchemas) -> None:
    model = client.models.retrieve(EMBEDDING_MODEL)
    openai_schemas.validate("Model", model.model_dump())
    assert model.id == EMBEDDING_MODEL


def test_unknown_model_is_a_404_the_sdk_understands(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])


def test_chat_completion(client: openai.OpenAI, openai_schemas: OpenAISchemas) -> None:
    completion = client.chat.completions.create(
        model=TEXT_MODEL, messages=[{"role": "user", "content": "Say hello"}], max_tokens=8, temperature=0
    )
    openai_schemas.validate("CreateChatCompletionResponse", completion.model_dump(exclude_unset=True))
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in {"stop", "length"}
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert 0 < completion.usage.completion_tokens <= 8
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_chat_stream_with_usage(client: openai.OpenAI, openai_schemas: OpenAISchemas) -> None:
    stream = client.chat.completions.create(
        model=TEXT_MODEL,
        messages=[{"role": "user", "content": "Count to ten"}],
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    for chunk in chunks:
        openai_schemas.validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishing) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    whole = client.chat.completions.create(
        model=TEXT_MODEL, messages=[{"role": "user", "content": "Count to ten"}], max_tokens=12, temperature=0
    )
    assert streamed == whole.choices[0].message.content
    assert usage_chunk.usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_completion_and_its_stream(client: openai.OpenAI, openai_schemas: OpenAISchemas) -> None:
    completion = client.completions.create(
        model=TEXT_MODEL, prompt="def fib(n):", max_tokens=10, temperature=0
    )
    openai_schemas.validate("CreateCompletionResponse", completion.model_dump(exclude_unset=True))
    assert completion.object == "text_completion"
    chunks = list(
        client.completions.create(
            model=TEXT_MODEL, prompt="def fib(n):", max_tokens=10, temperature=0, stream=True
        )
    )
    for chunk in chunks:
        # The reference shares this schema between responses and stream chunks but requires a string
        # finish_reason; OpenAI itself sends null until a choice's last chunk, and so does this server.
        body = chunk.model_dump(exclude_unset=True)
        for choice in body["choices"]:
            if choice["finish_reason"] is None:
                choice["finish_reason"] = "length"
        openai_schemas.validate("CreateCompletionResponse", body)
    assert "".join(c.choices[0].text for c in chunks) == completion.choices[0].text
    assert sum(1 for c in chunks if c.choices[0].finish_reason) == 1


def test_embeddings_are_real(client: openai.OpenAI, openai_schemas: OpenAISchemas) -> None:
    words = ["cat", "kitten", "spreadsheet"]
    result = client.embeddings.create(model=EMBEDDING_MODEL, input=words, encoding_format="float")
    openai_schemas.validate("CreateEmbeddingResponse", result.model_dump(exclude_unset=True))
    cat, kitten, spreadsheet = (item.embedding for item in result.data)

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
            sum(x * x for x in a) * sum(y * y for y in b)
        )

    assert len(cat) == 384
    assert cosine(cat, kitten) > cosine(cat, spreadsheet) + 0.1
    assert result.usage.prompt_tokens > 0


def test_embeddings_base64_default_of_the_sdk_decodes_to_the_same_vectors(client: openai.OpenAI) -> None:
    as_base64 = client.embeddings.create(
        model=EMBEDDING_MODEL, input="hello world"
    )  # the SDK asks for base64
    as_float = client.embeddings.create(model=EMBEDDING_MODEL, input="hello world", encoding_format="float")
    assert as_base64.data[0].embedding == pytest.approx(as_float.data[0].embedding, abs=1e-6)


def test_validation_error_is_a_400_with_the_param(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=TEXT_MODEL, messages=[{"role": "user", "content": "hi"}], temperature=5
        )
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["param"] == "temperature"
    assert body["type"] == "invalid_request_error"


def test_context_length_exceeded(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=TEXT_MODEL, prompt=[1] * 2000, max_tokens=4)
    assert caught.value.code == "context_length_exceeded"


def test_wrong_task_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=TEXT_MODEL, input="hi")
    assert "embedding" in caught.value.message


async def test_async_client_streams_concurrently(async_client: openai.AsyncOpenAI) -> None:
    import asyncio

    async def one(i: int) -> str:
        stream = await async_client.chat.completions.create(
            model=TEXT_MODEL,
            messages=[{"role": "user", "content": f"story {i}"}],
            max_tokens=6,
            stream=True,
            seed=i,
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    texts = await asyncio.gather(*(one(i) for i in range(4)))
    assert len(texts) == 4
