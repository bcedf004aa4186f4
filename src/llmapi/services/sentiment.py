"""POST /v1/analyze/sentiment."""

from __future__ import annotations

from llmapi.backends.registry import ModelRegistry
from llmapi.protocol.common import PromptUsage
from llmapi.protocol.sentiment import SentimentRequest, SentimentResponse, SentimentResult


async def analyze_sentiment(*, request: SentimentRequest, registry: ModelRegistry) -> SentimentResponse:
    backend = registry.sentiment(request.model)
    sentiments, prompt_tokens = await backend.analyze(request.all_texts())
    return SentimentResponse(
        model=backend.card.id,
        results=[
            SentimentResult(index=i, label=s.label, score=s.score, scores=s.scores)
            for i, s in enumerate(sentiments)
        ],
        usage=PromptUsage(prompt_tokens=prompt_tokens, total_tokens=prompt_tokens),
    )
