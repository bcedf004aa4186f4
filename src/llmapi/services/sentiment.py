"""POST /v1/analyze/sentiment."""

from __future__ import annotations

from llmapi.backends.base import Sentiment, SentimentBackend
from llmapi.protocol.common import PromptUsage
from llmapi.protocol.sentiment import SentimentRequest, SentimentResponse, SentimentResult
from llmapi.services.metering import Counted, MeteredBackend


class Analysis(Counted):
    sentiments: list[Sentiment]


class Analyzer(MeteredBackend[SentimentBackend]):
    async def analyze(self, texts: list[str]) -> Analysis:
        async def work() -> Analysis:
            sentiments, prompt_tokens = await self.backend.analyze(texts)
            return Analysis(sentiments=sentiments, prompt_tokens=prompt_tokens)

        return await self.meter.answer(Analysis, work)


async def analyze_sentiment(*, request: SentimentRequest, analyzer: Analyzer) -> SentimentResponse:
    analysis = await analyzer.analyze(request.all_texts())
    return SentimentResponse(
        model=analyzer.meter.model,
        results=[
            SentimentResult(index=i, label=s.label, score=s.score, scores=s.scores)
            for i, s in enumerate(analysis.sentiments)
        ],
        usage=PromptUsage(prompt_tokens=analysis.prompt_tokens, total_tokens=analysis.prompt_tokens),
    )
