"""Embeddings: text (or token ids) in, vectors out, as floats or base64 like OpenAI's."""

from __future__ import annotations

import base64
from array import array

from llmapi.backends.base import EmbeddingBackend
from llmapi.errors import UnsupportedError
from llmapi.protocol.common import PromptUsage
from llmapi.protocol.embeddings import Embedding, EmbeddingList, EmbeddingRequest
from llmapi.services.metering import Counted, MeteredBackend


class EmbeddedTexts(Counted):
    """What the cache keeps of an embeddings request: the vectors as floats, whatever encoding was asked."""

    vectors: list[list[float]]


class Embedder(MeteredBackend[EmbeddingBackend]):
    async def embed(self, texts: list[str]) -> EmbeddedTexts:
        async def work() -> EmbeddedTexts:
            result = await self.backend.embed(texts)
            return EmbeddedTexts(vectors=result.vectors, prompt_tokens=result.prompt_tokens)

        return await self.meter.answer(EmbeddedTexts, work)


def require_text_input(request: EmbeddingRequest, model: str) -> None:
    """Refuses token ids for a local model: they were counted by the client's tokenizer, not the model's.

    LangChain's OpenAIEmbeddings sends tiktoken's ids by default, to split long texts."""
    if not request.has_token_ids():
        return
    raise UnsupportedError(
        f"The input is token ids, which the local embedding model '{model}' cannot read: they belong to "
        "another tokenizer (the one your client counted with, such as tiktoken's), not to this model's. "
        "Send the text instead; with LangChain's OpenAIEmbeddings, set check_embedding_ctx_length=False.",
        param="input",
    )


def _texts(request: EmbeddingRequest, model: str) -> list[str]:
    require_text_input(request, model)
    items = request.input
    return [items] if isinstance(items, str) else [item for item in items if isinstance(item, str)]


def _encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(array("f", vector).tobytes()).decode("ascii")
    return vector


async def create_embeddings(*, request: EmbeddingRequest, embedder: Embedder) -> EmbeddingList:
    embedded = await embedder.embed(_texts(request, embedder.meter.model))
    if request.dimensions is not None and embedded.vectors and request.dimensions != len(embedded.vectors[0]):
        raise UnsupportedError(
            f"The model '{request.model}' makes {len(embedded.vectors[0])}-dimensional embeddings and cannot "
            f"shorten them to {request.dimensions}; leave 'dimensions' unset.",
            param="dimensions",
        )
    return EmbeddingList(
        data=[
            Embedding(embedding=_encode(vector, request.encoding_format), index=i)
            for i, vector in enumerate(embedded.vectors)
        ],
        model=embedder.meter.model,
        usage=PromptUsage(prompt_tokens=embedded.prompt_tokens, total_tokens=embedded.prompt_tokens),
    )
