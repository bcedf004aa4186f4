from __future__ import annotations

from llmapi.backends.base import TextPrompt
from llmapi.protocol.chat import ChatCompletionRequest
from llmapi.services.text_jobs import choices, sampling_params


def request(**fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


def test_unset_sampling_fields_take_openais_defaults() -> None:
    params = sampling_params(request(), max_tokens=7)

    assert (params.max_tokens, params.temperature, params.top_p, params.top_k) == (7, 1.0, 1.0, 0)
    assert (params.presence_penalty, params.frequency_penalty, params.seed, params.stop) == (
        0.0,
        0.0,
        None,
        (),
    )


def test_top_p_zero_means_the_likeliest_token() -> None:
    params = sampling_params(request(top_p=0), max_tokens=1)

    assert (params.top_p, params.top_k, params.greedy) == (1.0, 1, True)


def test_the_choices_of_a_seeded_request_have_their_own_seeds() -> None:
    jobs = choices(TextPrompt(text="x"), request(seed=2**64 - 1, stop="END"), n=3, max_tokens=4)

    assert [job.params.seed for job in jobs] == [2**64 - 1, 0, 1]
    assert all(job.params.stop == ("END",) for job in jobs)
