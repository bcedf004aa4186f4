"""POST /v1/analyze/sentiment."""

from __future__ import annotations

from llmapi.backends.registry import ModelRegistry
from llmapi.protocol.common import PromptUsage
from llmapi.protocol.sentiment import SentimentRequest, SentimentResponse, SentimentResult
from llmapi.services.usage import UsageNote


async def analyze_sentiment(
    *, request: SentimentRequest, registry: ModelRegistry, note: UsageNote
) -> SentimentResponse:
    backend = registry.sentiment(request.model)
    sentiments, prompt_tokens = await backend.analyze(request.all_texts())
    note.count(model=backend.card.id, prompt_tokens=prompt_tokens)
    return SentimentResponse(
        model=backend.card.id,
        results=[
            SentimentResult(index=i, label=s.label, score=s.score, scores=s.scores)
            for i, s in enumerate(sentiments)
        ],
        usage=PromptUsage(prompt_tokens=prompt_tokens, total_tokens=prompt_tokens),
    )
