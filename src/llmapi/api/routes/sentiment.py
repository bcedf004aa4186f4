from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from llmapi.api.deps import RegistryDep
from llmapi.api.responses import json_response
from llmapi.protocol.sentiment import SentimentRequest, SentimentResponse
from llmapi.services.sentiment import analyze_sentiment

router = APIRouter(prefix="/v1/analyze", tags=["tasks"])


@router.post("/sentiment", response_model=SentimentResponse, summary="Classify the sentiment of texts")
async def sentiment(body: SentimentRequest, registry: RegistryDep) -> Response:
    return json_response(await analyze_sentiment(request=body, registry=registry))
