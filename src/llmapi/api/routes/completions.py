from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from llmapi.api.deps import InferenceDep
from llmapi.api.responses import answer, document
from llmapi.api.route_classes import AuthenticatedRoute
from llmapi.api.routing import Router
from llmapi.api.security import require
from llmapi.auth.scopes import Scope
from llmapi.protocol.completions import Completion, CompletionRequest
from llmapi.serialization.messages import protobuf
from llmapi.services.completions import create_completion, stream_completion
from llmapi.services.forwarding import Forwarding

router = Router(prefix="/v1", tags=["completions"], route_class=AuthenticatedRoute)


@router.post(
    "/completions",
    response_model=Completion,
    summary="Create a text completion",
    dependencies=[require(Scope.COMPLETIONS)],
    openapi_extra=protobuf(request="CompletionRequest", response="Completion"),
)
async def completions(body: CompletionRequest, request: Request, inference: InferenceDep) -> Response:
    generation = await inference.generation("completions", body)
    if isinstance(generation, Forwarding):
        return await answer(request, generation.forward("completions", document(request), stream=body.stream))
    run = stream_completion if body.stream else create_completion
    return await answer(request, run(request=body, generation=generation))
