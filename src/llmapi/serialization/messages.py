"""Which Protobuf messages each endpoint's bodies are (JSON and XML need no such table)."""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "ErrorResponse"


@dataclass(frozen=True, slots=True)
class Messages:
    request: str | None
    response: str | None


_BY_ROUTE: dict[tuple[str, str], Messages] = {
    ("POST", "/v1/chat/completions"): Messages("ChatCompletionRequest", "ChatCompletion"),
    ("POST", "/v1/completions"): Messages("CompletionRequest", "Completion"),
    ("POST", "/v1/embeddings"): Messages("EmbeddingRequest", "EmbeddingList"),
    ("POST", "/v1/generate/text"): Messages("GenerateTextRequest", "GenerateTextResponse"),
    ("POST", "/v1/analyze/sentiment"): Messages("SentimentRequest", "SentimentResponse"),
    ("GET", "/v1/models"): Messages(None, "ModelList"),
}
_NONE = Messages(None, None)


def protobuf_messages(method: str, path: str) -> Messages:
    if method == "GET" and path.startswith("/v1/models/"):
        return Messages(None, "Model")
    return _BY_ROUTE.get((method, path.rstrip("/") or "/"), _NONE)
