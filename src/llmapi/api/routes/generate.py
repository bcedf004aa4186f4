from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from llmapi.api.deps import InferenceDep
from llmapi.api.responses import answer
from llmapi.api.route_classes import AuthenticatedRoute
from llmapi.api.routing import Router
from llmapi.api.security import require
from llmapi.auth.scopes import Scope
from llmapi.protocol.generate import GenerateTextRequest, GenerateTextResponse
from llmapi.serialization.messages import protobuf
from llmapi.services.generate import generate_text, stream_text

router = Router(prefix="/v1/generate", tags=["tasks"], route_class=AuthenticatedRoute)


@router.post(
    "/text",
    response_model=GenerateTextResponse,
    summary="Continue a text prompt",
    dependencies=[require(Scope.GENERATE)],
    openapi_extra=protobuf(request="GenerateTextRequest", response="GenerateTextResponse"),
)
async def generate(body: GenerateTextRequest, request: Request, inference: InferenceDep) -> Response:
    generation = await inference.prompt_generation(body)
    run = stream_text if body.stream else generate_text
    return await answer(request, run(request=body, generation=generation))
