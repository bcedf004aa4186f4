from __future__ import annotations

from dataclasses import dataclass

from llmapi.engine.token_logprob import TokenLogprob
from llmapi.types import FinishReason


@dataclass(frozen=True, slots=True)
class RequestOutput:
    """What one engine step produced for one request: new text, and how it ended if it did."""

    request_id: str
    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason | None = None
    queue_seconds: float | None = None  # set on a request's first output: from add_request to first scheduled
    logprobs: tuple[TokenLogprob, ...] = ()
    """Of the tokens whose text this output releases (requests that asked for logprobs)."""

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None
