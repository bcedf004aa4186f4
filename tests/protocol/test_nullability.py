"""Explicit null, wherever OpenAI's API description allows it, is accepted and means the default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from llmapi.protocol.chat import ChatCompletionRequest
from llmapi.protocol.common import StreamOptions
from llmapi.protocol.completions import CompletionRequest
from llmapi.protocol.embeddings import EmbeddingRequest
from llmapi.protocol.generate import GenerateTextRequest

SPEC = Path(__file__).parents[1] / "data" / "openai-requests.json"
SCHEMAS: dict[str, Any] = json.loads(SPEC.read_text())["components"]["schemas"]

MINIMAL: dict[type[BaseModel], dict[str, Any]] = {
    ChatCompletionRequest: {"model": "m", "messages": [{"role": "user", "content": "Hi"}]},
    CompletionRequest: {"model": "m", "prompt": "Hi"},
    EmbeddingRequest: {"model": "m", "input": "Hi"},
    GenerateTextRequest: {"prompt": "Hi"},
}
OPENAI_NAMES = {
    ChatCompletionRequest: "CreateChatCompletionRequest",
    CompletionRequest: "CreateCompletionRequest",
    EmbeddingRequest: "CreateEmbeddingRequest",
}


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def properties(schema: dict[str, Any]) -> dict[str, Any]:
    schema = resolve(schema)
    found = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        found.update(properties(part))
    return found


def nullable(schema: dict[str, Any]) -> bool:
    schema = resolve(schema)
    branches = schema.get("anyOf", []) + schema.get("oneOf", [])
    return bool(schema.get("nullable")) or schema.get("type") == "null" or any(map(nullable, branches))


def nullable_fields() -> list[tuple[type[BaseModel], str]]:
    return [
        (model, name)
        for model, openai_name in OPENAI_NAMES.items()
        for name, schema in properties(SCHEMAS[openai_name]).items()
        if nullable(schema)
    ]


def test_the_description_names_the_fields_of_the_issue() -> None:
    named = {(model.__name__, name) for model, name in nullable_fields()}
    assert {("ChatCompletionRequest", "n"), ("ChatCompletionRequest", "stream")} <= named
    assert {
        ("CompletionRequest", "echo"),
        ("CompletionRequest", "n"),
        ("CompletionRequest", "prompt"),
    } <= named


@pytest.mark.parametrize(("model", "name"), nullable_fields(), ids=lambda v: getattr(v, "__name__", v))
def test_null_is_accepted_where_openai_allows_it(model: type[BaseModel], name: str) -> None:
    parsed = model.model_validate({**MINIMAL[model], name: None})
    if name in model.model_fields and name not in MINIMAL[model]:
        default = model.model_validate(MINIMAL[model])
        assert getattr(parsed, name) == getattr(default, name), f"{name}: null is not the default"


@pytest.mark.parametrize("model", list(MINIMAL), ids=lambda m: m.__name__)
def test_every_field_with_a_default_takes_null_as_that_default(model: type[BaseModel]) -> None:
    optional = [n for n, f in model.model_fields.items() if not f.is_required() and n not in MINIMAL[model]]
    parsed = model.model_validate({**MINIMAL[model], **dict.fromkeys(optional)})
    assert parsed == model.model_validate(MINIMAL[model])


def test_a_null_completion_prompt_is_the_start_of_a_document() -> None:
    request = CompletionRequest.model_validate({"model": "m", "prompt": None})
    assert request.prompts() == [""]


def test_null_stream_options_fields_are_their_defaults() -> None:
    assert StreamOptions.model_validate({"include_usage": None}).include_usage is False


@pytest.mark.parametrize(
    ("model", "name"),
    [(ChatCompletionRequest, "model"), (ChatCompletionRequest, "messages"), (EmbeddingRequest, "input")],
)
def test_a_required_field_stays_required(model: type[BaseModel], name: str) -> None:
    with pytest.raises(ValidationError, match=name):
        model.model_validate({**MINIMAL[model], name: None})


@pytest.mark.parametrize("model", list(MINIMAL), ids=lambda m: m.__name__)
def test_the_api_description_says_these_fields_take_null(model: type[BaseModel]) -> None:
    properties = model.model_json_schema()["properties"]
    optional = [n for n, f in model.model_fields.items() if not f.is_required()]
    for name in optional:
        assert {"type": "null"} in properties[name].get("anyOf", []), name
