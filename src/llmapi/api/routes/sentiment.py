from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from llmapi.api.deps import InferenceDep
from llmapi.api.responses import answer
from llmapi.api.route_classes import AuthenticatedRoute
from llmapi.api.routing import Router
from llmapi.api.security import require
from llmapi.auth.scopes import Scope
from llmapi.protocol.sentiment import SentimentRequest, SentimentResponse
from llmapi.serialization.messages import protobuf
from llmapi.services.sentiment import analyze_sentiment

router = Router(prefix="/v1/analyze", tags=["tasks"], route_class=AuthenticatedRoute)


@router.post(
    "/sentiment",
    response_model=SentimentResponse,
    summary="Classify the sentiment of texts",
    dependencies=[require(Scope.ANALYZE)],
    openapi_extra=protobuf(request="SentimentRequest", response="SentimentResponse"),
)
async def sentiment(body: SentimentRequest, request: Request, inference: InferenceDep) -> Response:
    analyzer = await inference.analyzer(body)
    return await answer(request, analyze_sentiment(request=body, analyzer=analyzer))
