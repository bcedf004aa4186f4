from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from llmapi.api.deps import InferenceDep
from llmapi.api.responses import answer, document
from llmapi.api.route_classes import AuthenticatedRoute
from llmapi.api.routing import Router
from llmapi.api.security import require
from llmapi.auth.scopes import Scope
from llmapi.protocol.embeddings import EmbeddingList, EmbeddingRequest
from llmapi.serialization.messages import protobuf
from llmapi.services.embeddings import create_embeddings
from llmapi.services.forwarding import Forwarding

router = Router(prefix="/v1", tags=["embeddings"], route_class=AuthenticatedRoute)


@router.post(
    "/embeddings",
    response_model=EmbeddingList,
    summary="Embed text",
    dependencies=[require(Scope.EMBEDDINGS)],
    openapi_extra=protobuf(request="EmbeddingRequest", response="EmbeddingList"),
)
async def embeddings(body: EmbeddingRequest, request: Request, inference: InferenceDep) -> Response:
    embedder = await inference.embedder(body)
    if isinstance(embedder, Forwarding):
        return await answer(request, embedder.forward("embeddings", document(request), stream=False))
    return await answer(request, create_embeddings(request=body, embedder=embedder))
