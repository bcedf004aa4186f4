"""The engine's token logprobs in OpenAI's two shapes: chat's list of tokens, completions' parallel lists."""

from __future__ import annotations

from collections.abc import Sequence

from llmapi.engine.token_logprob import TokenLogprob
from llmapi.errors import InvalidRequestError, UnsupportedError
from llmapi.protocol import chat
from llmapi.protocol.chat import ChatCompletionRequest, ChoiceLogprobs
from llmapi.protocol.completions import CompletionLogprobs, CompletionRequest


def chat_logprob_count(request: ChatCompletionRequest) -> int | None:
    """How many alternatives a token the engine reports (None: no logprobs at all)."""
    if not request.logprobs:
        if request.top_logprobs:
            raise InvalidRequestError(
                "top_logprobs needs logprobs: set logprobs to true.", param="top_logprobs"
            )
        return None
    return request.top_logprobs or 0


def completion_logprob_count(request: CompletionRequest) -> int | None:
    if request.logprobs is not None and request.echo:
        raise UnsupportedError(
            "echo with logprobs asks for the prompt's logprobs, which local models do not compute: "
            "send one or the other.",
            param="echo",
        )
    return request.logprobs


def chat_logprobs(logprobs: Sequence[TokenLogprob]) -> ChoiceLogprobs:
    return ChoiceLogprobs(
        content=[
            chat.TokenLogprob(
                token=lp.token,
                logprob=lp.logprob,
                bytes=list(lp.token_bytes),
                top_logprobs=[
                    chat.TopLogprob(token=top.token, logprob=top.logprob, bytes=list(top.token_bytes))
                    for top in lp.top
                ],
            )
            for lp in logprobs
        ],
        refusal=None,
    )


def completion_logprobs(logprobs: Sequence[TokenLogprob], *, start: int = 0) -> CompletionLogprobs:
    """`start`: where the completion's text begins in the choice's text (after an echoed prompt)."""
    return CompletionLogprobs(
        tokens=[lp.token for lp in logprobs],
        token_logprobs=[lp.logprob for lp in logprobs],
        top_logprobs=[{top.token: top.logprob for top in lp.top} for lp in logprobs],
        text_offset=[start + lp.offset for lp in logprobs],
    )
