"""What a text request reserves before it runs: every sequence prefills its prompt, so the prompt's estimate
counts once per sequence (n choices of each prompt), as do the tokens each may generate."""

from __future__ import annotations

from llmapi.protocol.chat import ChatCompletionRequest
from llmapi.protocol.completions import CompletionRequest
from llmapi.protocol.generate import GenerateTextRequest

FORTY_CHARS = "x" * 40  # estimated at 40 // 4 + 1 = 11 tokens


def test_a_chat_request_reserves_its_prompt_and_max_tokens_once_per_choice() -> None:
    request = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": FORTY_CHARS}], "n": 3}
    )

    assert request.sequence_count() == 3
    assert request.prompt_token_estimate() == 3 * 11
    assert request.token_estimate(10) == 3 * 11 + 3 * 10


def test_a_completions_request_reserves_each_prompt_once_per_choice() -> None:
    request = CompletionRequest.model_validate({"model": "m", "prompt": [FORTY_CHARS, "x" * 20], "n": 2})
    token_ids = CompletionRequest.model_validate({"model": "m", "prompt": [[1, 2, 3, 4, 5]], "n": 2})

    assert request.sequence_count() == 4
    assert request.prompt_token_estimate() == 2 * (11 + 6)
    assert request.token_estimate(10) == 2 * (11 + 6) + 4 * 10
    assert token_ids.prompt_token_estimate() == 2 * 5


def test_a_generate_request_is_one_sequence() -> None:
    request = GenerateTextRequest.model_validate({"prompt": FORTY_CHARS})

    assert request.sequence_count() == 1
    assert request.token_estimate(10) == 11 + 10
