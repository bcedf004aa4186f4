from __future__ import annotations

from typing import Any

import pytest

from llmapi.engine.token_logprob import TokenLogprob, TopLogprob
from llmapi.errors import InvalidRequestError, UnsupportedError
from llmapi.protocol.chat import ChatCompletionRequest
from llmapi.protocol.completions import CompletionRequest
from llmapi.services.logprobs import (
    chat_logprob_count,
    chat_logprobs,
    completion_logprob_count,
    completion_logprobs,
)

EURO_PIECE = TokenLogprob(7, "\\xe2", (0xE2,), -0.5, 3, (TopLogprob(7, "\\xe2", (0xE2,), -0.5),))
WORD = TokenLogprob(8, " hi", tuple(b" hi"), -1.25, 4, (TopLogprob(9, " ho", tuple(b" ho"), -1.0),))


def chat(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], **fields}
    )


def test_chat_shape_keeps_each_tokens_bytes_and_alternatives() -> None:
    rendered = chat_logprobs([EURO_PIECE, WORD]).model_dump()
    assert rendered == {
        "content": [
            {
                "token": "\\xe2",
                "logprob": -0.5,
                "bytes": [0xE2],
                "top_logprobs": [{"token": "\\xe2", "logprob": -0.5, "bytes": [0xE2]}],
            },
            {
                "token": " hi",
                "logprob": -1.25,
                "bytes": list(b" hi"),
                "top_logprobs": [{"token": " ho", "logprob": -1.0, "bytes": list(b" ho")}],
            },
        ],
        "refusal": None,
    }


def test_completions_shape_is_parallel_lists_with_offsets_after_the_echo() -> None:
    rendered = completion_logprobs([EURO_PIECE, WORD], start=10)
    assert rendered.model_dump() == {
        "tokens": ["\\xe2", " hi"],
        "token_logprobs": [-0.5, -1.25],
        "top_logprobs": [{"\\xe2": -0.5}, {" ho": -1.0}],
        "text_offset": [13, 14],
    }


def test_how_many_alternatives_a_request_asks_for() -> None:
    assert chat_logprob_count(chat()) is None
    assert chat_logprob_count(chat(logprobs=True)) == 0
    assert chat_logprob_count(chat(logprobs=True, top_logprobs=20)) == 20
    with pytest.raises(InvalidRequestError, match="set logprobs to true"):
        chat_logprob_count(chat(top_logprobs=2))
    completion = {"model": "m", "prompt": "x"}
    assert completion_logprob_count(CompletionRequest.model_validate(completion)) is None
    assert completion_logprob_count(CompletionRequest.model_validate({**completion, "logprobs": 0})) == 0
    with pytest.raises(UnsupportedError, match="echo"):
        completion_logprob_count(
            CompletionRequest.model_validate({**completion, "logprobs": 1, "echo": True})
        )
