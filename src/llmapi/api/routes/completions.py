from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from llmapi.api.deps import AdmitDep, CacheDep, RegistryDep, SettingsDep, UsageNoteDep, with_cache_status
from llmapi.api.disconnect import cancel_on_disconnect
from llmapi.api.responses import json_response
from llmapi.api.security import require
from llmapi.api.streaming import sse_response
from llmapi.auth.scopes import Scope
from llmapi.protocol.completions import Completion, CompletionRequest
from llmapi.services.completions import create_completion, stream_completion

router = APIRouter(prefix="/v1", tags=["completions"])


@router.post(
    "/completions",
    response_model=Completion,
    summary="Create a text completion",
    dependencies=[require(Scope.COMPLETIONS)],
)
async def completions(
    body: CompletionRequest,
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    note: UsageNoteDep,
    admit: AdmitDep,
    cache: CacheDep,
) -> Response:
    max_tokens = body.max_tokens or settings.default_max_tokens
    await admit(model=body.model, tokens=body.token_estimate(max_tokens))
    lookup = cache.lookup("completions", body, max_tokens=max_tokens)
    default = settings.default_max_tokens
    if body.stream:
        chunks = stream_completion(
            request=body, registry=registry, default_max_tokens=default, note=note, cache=lookup
        )
        return with_cache_status(await sse_response(chunks), lookup)
    work = create_completion(
        request=body, registry=registry, default_max_tokens=default, note=note, cache=lookup
    )
    return with_cache_status(json_response(await cancel_on_disconnect(request, work)), lookup)
