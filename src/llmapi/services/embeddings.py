"""Embeddings: text (or token ids) in, vectors out, as floats or base64 like OpenAI's."""

from __future__ import annotations

import base64
from array import array

from pydantic import BaseModel

from llmapi.backends.registry import ModelRegistry
from llmapi.errors import UnsupportedError
from llmapi.protocol.common import PromptUsage
from llmapi.protocol.embeddings import Embedding, EmbeddingList, EmbeddingRequest
from llmapi.services.response_cache import NO_CACHE, CacheLookup
from llmapi.services.usage import UsageNote


def _texts(request: EmbeddingRequest) -> list[str]:
    items = request.input
    if isinstance(items, str):
        return [items]
    if all(isinstance(item, str) for item in items):
        return [str(item) for item in items]
    raise UnsupportedError(
        "Token-id input is not supported for embeddings by this server; send the text instead.", param="input"
    )


def _encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(array("f", vector).tobytes()).decode("ascii")
    return vector


class CachedEmbeddings(BaseModel):
    """What the cache keeps of an embeddings request: the vectors as floats, whatever encoding was asked."""

    vectors: list[list[float]]
    prompt_tokens: int


async def create_embeddings(
    *, request: EmbeddingRequest, registry: ModelRegistry, note: UsageNote, cache: CacheLookup = NO_CACHE
) -> EmbeddingList:
    backend = registry.embedding(request.model)
    texts = _texts(request)
    if cached := await cache.get(CachedEmbeddings):
        note.count_cached(model=request.model, prompt_tokens=cached.prompt_tokens)
        return _embedding_list(request, cached)
    result = await backend.embed(texts)
    if request.dimensions is not None and result.vectors and request.dimensions != len(result.vectors[0]):
        raise UnsupportedError(
            f"The model '{request.model}' makes {len(result.vectors[0])}-dimensional embeddings and cannot "
            f"shorten them to {request.dimensions}; leave 'dimensions' unset.",
            param="dimensions",
        )
    note.count(model=request.model, prompt_tokens=result.prompt_tokens)
    computed = CachedEmbeddings(vectors=result.vectors, prompt_tokens=result.prompt_tokens)
    await cache.put(computed)
    return _embedding_list(request, computed)


def _embedding_list(request: EmbeddingRequest, embeddings: CachedEmbeddings) -> EmbeddingList:
    return EmbeddingList(
        data=[
            Embedding(embedding=_encode(vector, request.encoding_format), index=i)
            for i, vector in enumerate(embeddings.vectors)
        ],
        model=request.model,
        usage=PromptUsage(prompt_tokens=embeddings.prompt_tokens, total_tokens=embeddings.prompt_tokens),
    )
