from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from llmapi.api.deps import AdmitDep, CacheDep, RegistryDep, UsageNoteDep, with_cache_status
from llmapi.api.responses import json_response
from llmapi.api.security import require
from llmapi.auth.scopes import Scope
from llmapi.protocol.embeddings import EmbeddingList, EmbeddingRequest
from llmapi.services.embeddings import create_embeddings

router = APIRouter(prefix="/v1", tags=["embeddings"])


@router.post(
    "/embeddings",
    response_model=EmbeddingList,
    summary="Embed text",
    dependencies=[require(Scope.EMBEDDINGS)],
)
async def embeddings(
    body: EmbeddingRequest, registry: RegistryDep, note: UsageNoteDep, admit: AdmitDep, cache: CacheDep
) -> Response:
    await admit(model=body.model, tokens=body.token_estimate())
    lookup = cache.lookup("embeddings", body)
    result = await create_embeddings(request=body, registry=registry, note=note, cache=lookup)
    return with_cache_status(json_response(result), lookup)
