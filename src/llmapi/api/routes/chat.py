from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from llmapi.api.deps import AdmitDep, CacheDep, RegistryDep, SettingsDep, UsageNoteDep, with_cache_status
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
    admit: AdmitDep,
    cache: CacheDep,
) -> Response:
    max_tokens = body.requested_max_tokens() or settings.default_max_tokens
    await admit(model=body.model, tokens=body.token_estimate(max_tokens))
    lookup = cache.lookup("chat", body, max_tokens=max_tokens)
    default = settings.default_max_tokens
    if body.stream:
        chunks = stream_chat_completion(
            request=body, registry=registry, default_max_tokens=default, note=note, cache=lookup
        )
        return with_cache_status(await sse_response(chunks), lookup)
    work = create_chat_completion(
        request=body, registry=registry, default_max_tokens=default, note=note, cache=lookup
    )
    return with_cache_status(json_response(await cancel_on_disconnect(request, work)), lookup)
