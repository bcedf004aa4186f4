from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from llmapi.api.deps import RegistryDep, SettingsDep, UsageNoteDep
from llmapi.api.disconnect import cancel_on_disconnect
from llmapi.api.responses import json_response
from llmapi.api.security import require
from llmapi.api.streaming import sse_response
from llmapi.auth.scopes import Scope
from llmapi.protocol.chat import ChatCompletion, ChatCompletionRequest
from llmapi.services.chat import create_chat_completion, stream_chat_completion

router = APIRouter(prefix="/v1", tags=["chat"])


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="Create a chat completion",
    dependencies=[require(Scope.CHAT)],
)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    note: UsageNoteDep,
) -> Response:
    max_tokens = settings.default_max_tokens
    if body.stream:
        return await sse_response(
            stream_chat_completion(request=body, registry=registry, default_max_tokens=max_tokens, note=note)
        )
    work = create_chat_completion(request=body, registry=registry, default_max_tokens=max_tokens, note=note)
    return json_response(await cancel_on_disconnect(request, work))
