from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from llmapi.api.deps import AdmitDep, RegistryDep, UsageNoteDep
from llmapi.api.responses import json_response
from llmapi.api.security import require
from llmapi.auth.scopes import Scope
from llmapi.protocol.sentiment import SentimentRequest, SentimentResponse
from llmapi.services.sentiment import analyze_sentiment

router = APIRouter(prefix="/v1/analyze", tags=["tasks"])


@router.post(
    "/sentiment",
    response_model=SentimentResponse,
    summary="Classify the sentiment of texts",
    dependencies=[require(Scope.ANALYZE)],
)
async def sentiment(
    body: SentimentRequest, registry: RegistryDep, note: UsageNoteDep, admit: AdmitDep
) -> Response:
    await admit(model=registry.sentiment(body.model).card.id, tokens=body.token_estimate())
    return json_response(await analyze_sentiment(request=body, registry=registry, note=note))
