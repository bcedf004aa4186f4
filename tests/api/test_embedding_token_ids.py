"""Embeddings given token ids (what LangChain's OpenAIEmbeddings sends by default): a local model refuses
them with a 400 that says what to change; an upstream gets them as sent. (LangChain's default itself cannot
run here: tiktoken downloads its vocabulary. The ids below are what it would send.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from langchain_openai import OpenAIEmbeddings
from pydantic import SecretStr
from tests.api.inprocess import in_process
from tests.recording_upstream import RecordingUpstream, recording_upstream
from tests.servers import ADMIN_KEY, RunningServer

from llmapi.backends.remote.openai_compat import OpenAICompatBackend
from llmapi.model_specs import ModelSpec

LOCAL_MODEL = "all-MiniLM-L6-v2"
TOKEN_IDS = [[9906, 1917], [791, 4062, 14198, 39935]]  # tiktoken's cl100k_base ids, as LangChain sends


@pytest.mark.parametrize("token_ids", [TOKEN_IDS, TOKEN_IDS[0]], ids=["batch", "one"])
def test_a_local_model_refuses_token_ids_and_names_the_client_setting(
    client: openai.OpenAI, token_ids: list[int] | list[list[int]]
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=LOCAL_MODEL, input=token_ids)
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == "input"
    assert "another tokenizer" in error["message"]
    assert "check_embedding_ctx_length=False" in error["message"]


def test_the_same_text_is_embedded(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model=LOCAL_MODEL, input=["Hello world"])
    assert len(result.data[0].embedding) == 384


@pytest.fixture
async def upstream() -> AsyncIterator[RecordingUpstream]:
    async with recording_upstream() as running:
        yield running


async def test_an_upstream_gets_the_token_ids_as_sent(tmp_path: Path, upstream: RecordingUpstream) -> None:
    options = {"base_url": upstream.url, "upstream_model": "up-embed"}
    backend = OpenAICompatBackend(
        ModelSpec(id="remote-embed", task="embedding", backend="openai", options=options)
    )
    async with in_process(tmp_path, backend) as stack:
        sdk = openai.AsyncOpenAI(
            base_url="http://llmapi.test/v1", api_key=ADMIN_KEY, http_client=stack.client, max_retries=0
        )
        result = await sdk.embeddings.create(model="remote-embed", input=TOKEN_IDS, encoding_format="float")
    assert upstream.last.body["input"] == TOKEN_IDS
    assert len(result.data) == len(TOKEN_IDS)


def test_langchain_with_the_setting_named_in_the_400_gets_vectors(server: RunningServer) -> None:
    embeddings = OpenAIEmbeddings(
        model=LOCAL_MODEL,
        base_url=server.api_url,
        api_key=SecretStr(ADMIN_KEY),
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    cat, kitten, stock = embeddings.embed_documents(["a cat", "a kitten", "the stock market fell"])
    assert len(cat) == 384
    assert dot(cat, kitten) > dot(cat, stock)


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))
