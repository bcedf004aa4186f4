from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from llmapi.api.deps import RegistryDep, SettingsDep, UsageNoteDep
from llmapi.api.disconnect import cancel_on_disconnect
from llmapi.api.responses import json_response
from llmapi.api.security import require
from llmapi.api.streaming import sse_response
from llmapi.auth.scopes import Scope
from llmapi.protocol.generate import GenerateTextRequest, GenerateTextResponse
from llmapi.services.generate import generate_text, stream_text

router = APIRouter(prefix="/v1/generate", tags=["tasks"])


@router.post(
    "/text",
    response_model=GenerateTextResponse,
    summary="Continue a text prompt",
    dependencies=[require(Scope.GENERATE)],
)
async def generate(
    body: GenerateTextRequest,
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    note: UsageNoteDep,
) -> Response:
    max_tokens = settings.default_max_tokens
    if body.stream:
        return await sse_response(
            stream_text(request=body, registry=registry, default_max_tokens=max_tokens, note=note)
        )
    work = generate_text(request=body, registry=registry, default_max_tokens=max_tokens, note=note)
    return json_response(await cancel_on_disconnect(request, work))
