from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from llmapi.api.deps import AdmitDep, CacheDep, RegistryDep, SettingsDep, UsageNoteDep, with_cache_status
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
    admit: AdmitDep,
    cache: CacheDep,
) -> Response:
    max_tokens = body.max_tokens or settings.default_max_tokens
    await admit(model=registry.text(body.model).card.id, tokens=body.token_estimate(max_tokens))
    lookup = cache.lookup("generate", body, max_tokens=max_tokens)
    default = settings.default_max_tokens
    if body.stream:
        chunks = stream_text(
            request=body, registry=registry, default_max_tokens=default, note=note, cache=lookup
        )
        return with_cache_status(await sse_response(chunks), lookup)
    work = generate_text(request=body, registry=registry, default_max_tokens=default, note=note, cache=lookup)
    return with_cache_status(json_response(await cancel_on_disconnect(request, work)), lookup)
