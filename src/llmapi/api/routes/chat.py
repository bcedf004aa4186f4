from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from llmapi.api.deps import InferenceDep
from llmapi.api.responses import answer, document
from llmapi.api.route_classes import AuthenticatedRoute
from llmapi.api.routing import Router
from llmapi.api.security import require
from llmapi.auth.scopes import Scope
from llmapi.protocol.chat import ChatCompletion, ChatCompletionRequest
from llmapi.serialization.messages import protobuf
from llmapi.services.chat import create_chat_completion, stream_chat_completion
from llmapi.services.forwarding import Forwarding

router = Router(prefix="/v1", tags=["chat"], route_class=AuthenticatedRoute)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="Create a chat completion",
    dependencies=[require(Scope.CHAT)],
    openapi_extra=protobuf(request="ChatCompletionRequest", response="ChatCompletion"),
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, inference: InferenceDep
) -> Response:
    generation = await inference.generation("chat", body)
    if isinstance(generation, Forwarding):
        return await answer(
            request, generation.forward("chat/completions", document(request), stream=body.stream)
        )
    run = stream_chat_completion if body.stream else create_chat_completion
    return await answer(request, run(request=body, generation=generation))
