from __future__ import annotations

import pytest

from llmapi.model_specs import DEFAULT_TEXT_MODEL, ModelSpec, default_models, random_text_model


def test_the_real_chat_model_is_the_first_text_model_of_the_defaults() -> None:
    text_models = [spec for spec in default_models() if spec.task == "text-generation"]
    assert text_models[0].id == DEFAULT_TEXT_MODEL == "smollm2-135m-instruct"
    assert text_models[0].source == "builtin:smollm2-135m-instruct"
    assert random_text_model() not in default_models()


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"backend": "transformers", "source": "builtin:smollm2-135m-instruct"}, "SmolLM2-135M-Instruct"),
        ({"backend": "transformers", "source": "builtin:gpt2-124m-random"}, "random weights"),
        ({"task": "embedding", "backend": "sentence-transformers"}, "all-MiniLM-L6-v2"),
        ({"task": "sentiment", "backend": "vader"}, "VADER"),
    ],
)
def test_a_model_that_ships_with_llmapi_describes_itself(entry: dict[str, str], says: str) -> None:
    spec = ModelSpec.model_validate({"id": "m", "task": "text-generation", **entry})
    assert spec.description is not None
    assert says in spec.description


def test_a_description_given_wins_and_other_sources_have_none() -> None:
    given = ModelSpec(
        id="m",
        task="text-generation",
        backend="transformers",
        source="builtin:gpt2-124m-random",
        description="Mine",
    )
    assert given.description == "Mine"
    assert ModelSpec(id="m", task="text-generation", backend="transformers", source="/m").description is None
