"""Structured output end to end: the real default chat model (SmolLM2-135M-Instruct) behind `llmapi serve`,
through the openai SDK. Every answer must be valid for its schema, greedy or sampled, streamed or not.

The schemas bound their strings and numbers: sampled at temperature 1, a 135M model may write one string or
number (JSON numbers may have any number of digits) until max_tokens, and an answer cut there is (rightly)
"length" and not valid JSON."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any, Literal

import jsonschema
import openai
import pytest
from pydantic import BaseModel
from tests.real_model import REAL_MODEL

PERSON: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "role": {"type": "string", "enum": ["engineer", "teacher", "doctor"]},
        "email": {"type": "string", "maxLength": 40},
        "address": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 40},
                "country": {"type": "string", "maxLength": 40},
            },
            "required": ["city", "country"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "age", "role", "address"],
    "additionalProperties": False,
}
ORDER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "product": {"type": "string", "maxLength": 40},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": 99},
                    "price": {"type": "number", "minimum": 0, "maximum": 10000, "multipleOf": 0.01},
                },
                "required": ["product", "quantity", "price"],
                "additionalProperties": False,
            },
            "minItems": 1,
            "maxItems": 3,
        },
        "paid": {"type": "boolean"},
        "note": {"type": ["string", "null"], "maxLength": 40},
    },
    "required": ["items", "paid", "note"],
    "additionalProperties": False,
}
CITY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "country": {"type": "string", "maxLength": 40},
        "population_millions": {"type": "number", "minimum": 0, "maximum": 100, "multipleOf": 0.01},
        "landmarks": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 3},
    },
    "required": ["city", "country", "landmarks"],
    "additionalProperties": False,
}
CASES = [
    ("person", PERSON, "Describe a fictional software engineer from Paris as JSON."),
    ("order", ORDER, "Write a small online order of fruit as JSON."),
    ("city", CITY, "Give facts about the capital of France as JSON."),
]


def assert_valid(text: str, schema: dict[str, Any]) -> None:
    """Numbers read as decimals: in floats, 2.49 is not a multiple of 0.01 for jsonschema."""
    exact_schema = json.loads(json.dumps(schema), parse_float=Decimal)
    jsonschema.validate(json.loads(text, parse_float=Decimal), exact_schema)


def json_schema_format(name: str, schema: dict[str, Any], *, strict: bool = True) -> Any:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}


def ask(prompt: str) -> list[Any]:
    return [{"role": "user", "content": prompt}]


@pytest.mark.parametrize(("name", "schema", "prompt"), CASES)
def test_nested_schemas_answer_valid_json(
    real_client: openai.OpenAI, name: str, schema: dict[str, Any], prompt: str
) -> None:
    completion = real_client.chat.completions.create(
        model=REAL_MODEL,
        messages=ask(prompt),
        response_format=json_schema_format(name, schema),
        temperature=0,
        max_tokens=400,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    assert_valid(choice.message.content or "", schema)


@pytest.mark.parametrize(("name", "schema", "prompt"), CASES)
def test_streamed_answers_are_valid_json_too(
    real_client: openai.OpenAI, name: str, schema: dict[str, Any], prompt: str
) -> None:
    stream = real_client.chat.completions.create(
        model=REAL_MODEL,
        messages=ask(prompt),
        response_format=json_schema_format(name, schema, strict=False),
        temperature=0,
        max_tokens=400,
        stream=True,
    )
    pieces, finish = [], None
    for chunk in stream:
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert finish == "stop"
    assert len([p for p in pieces if p]) > 1
    assert_valid("".join(pieces), schema)


async def test_constrained_and_free_requests_at_temperature_1_in_one_batch(
    real_async_client: openai.AsyncOpenAI,
) -> None:
    async def constrained(name: str, schema: dict[str, Any], prompt: str, seed: int) -> None:
        completion = await real_async_client.chat.completions.create(
            model=REAL_MODEL,
            messages=ask(prompt),
            response_format=json_schema_format(name, schema),
            temperature=1.0,
            seed=seed,
            max_tokens=400,
        )
        choice = completion.choices[0]
        assert choice.finish_reason == "stop", choice.message.content
        assert_valid(choice.message.content or "", schema)

    async def free(seed: int) -> str:
        completion = await real_async_client.chat.completions.create(
            model=REAL_MODEL, messages=ask("Tell me about Paris."), temperature=1.0, seed=seed, max_tokens=40
        )
        return completion.choices[0].message.content or ""

    jobs = [constrained(*case, seed=seed) for case in CASES for seed in (1, 2)]
    answers = await asyncio.gather(*jobs, *(free(seed) for seed in range(4)))
    assert all(answers[len(jobs) :])


def test_json_object_answers_an_object(real_client: openai.OpenAI) -> None:
    completion = real_client.chat.completions.create(
        model=REAL_MODEL,
        messages=ask('What is the capital of France? Answer as JSON, like {"capital": "..."}.'),
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=200,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    assert isinstance(json.loads(choice.message.content or ""), dict)


def test_completions_take_response_format_as_an_extension(real_client: openai.OpenAI) -> None:
    completion = real_client.completions.create(
        model=REAL_MODEL,
        prompt="A person, as JSON: ",
        max_tokens=300,
        temperature=0,
        extra_body={"response_format": json_schema_format("person", PERSON)},
    )
    assert completion.choices[0].finish_reason == "stop"
    assert_valid(completion.choices[0].text, PERSON)


class Address(BaseModel):
    city: str
    country: str


class Person(BaseModel):
    name: str
    age: int
    role: Literal["engineer", "teacher", "doctor"]
    nickname: str | None
    address: Address


def test_the_sdk_parse_helper_gets_its_pydantic_model(real_client: openai.OpenAI) -> None:
    completion = real_client.chat.completions.parse(
        model=REAL_MODEL,
        messages=ask("Describe a fictional teacher from Lyon."),
        response_format=Person,
        temperature=0,
        max_tokens=300,
    )
    person = completion.choices[0].message.parsed
    assert isinstance(person, Person)
    assert person.role in ("engineer", "teacher", "doctor")


def test_the_sdk_stream_helper_gets_its_pydantic_model(real_client: openai.OpenAI) -> None:
    with real_client.chat.completions.stream(
        model=REAL_MODEL,
        messages=ask("Describe a fictional doctor from Nice."),
        response_format=Person,
        temperature=0,
        max_tokens=300,
    ) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert len(deltas) > 1
    assert isinstance(final.choices[0].message.parsed, Person)


def test_max_tokens_mid_json_is_length_with_the_truncated_text(real_client: openai.OpenAI) -> None:
    completion = real_client.chat.completions.create(
        model=REAL_MODEL,
        messages=ask("Describe a fictional software engineer from Paris as JSON."),
        response_format=json_schema_format("person", PERSON),
        temperature=0,
        max_tokens=6,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content is not None and choice.message.content.startswith('{"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(choice.message.content)
    with pytest.raises(openai.LengthFinishReasonError):
        real_client.chat.completions.parse(
            model=REAL_MODEL, messages=ask("A teacher."), response_format=Person, max_tokens=6
        )


def test_a_schema_the_engine_cannot_enforce_is_a_400_naming_it(real_client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"tags": {"type": "array", "uniqueItems": True}}}
    with pytest.raises(openai.BadRequestError) as caught:
        real_client.chat.completions.create(
            model=REAL_MODEL,
            messages=ask("Tags?"),
            response_format=json_schema_format("tags", schema),
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == "response_format"
    assert "uniqueItems" in error["message"]
