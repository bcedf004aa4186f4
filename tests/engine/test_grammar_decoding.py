"""Constrained decoding in the engine, with the built-in GPT-2 (random weights, a head of 50,257 rows for a
tokenizer of 8,192): whatever the weights, the output is valid for its grammar, and free rows are untouched.
Random weights repeat themselves, so the schemas bound their strings and numbers: unbounded, a valid answer
may simply never end before max_tokens."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import torch

from llmapi.backends.local.builtin import build_builtin_model
from llmapi.engine.constraint import ANY_JSON_OBJECT, Constraint, lark_json
from llmapi.engine.llm_engine import LLMEngine
from llmapi.engine.request_output import RequestOutput
from llmapi.engine.sampling_params import SamplingParams

SCHEMAS: dict[str, dict[str, Any]] = {
    "person": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "role": {"enum": ["admin", "editor", "viewer"]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 2},
            "address": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "maxLength": 10},
                    "zip": {"type": "string", "maxLength": 5},
                },
                "required": ["city"],
                "additionalProperties": False,
            },
        },
        "required": ["name", "age", "role", "address"],
        "additionalProperties": False,
    },
    "point": {
        "type": "object",
        "properties": {
            "x": {"type": "integer", "minimum": -999, "maximum": 999},
            "y": {"type": "integer", "minimum": 0, "maximum": 99},
            "label": {"type": ["string", "null"], "maxLength": 8},
        },
        "required": ["x", "y", "label"],
        "additionalProperties": False,
    },
    "flags": {
        "type": "array",
        "items": {"type": "boolean"},
        "minItems": 1,
        "maxItems": 5,
    },
}


@pytest.fixture(scope="module")
def builtin() -> Iterator[tuple[Any, Any]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield build_builtin_model("gpt2-124m-random", torch.float32)
    torch.set_num_threads(threads)


def engine_of(builtin: tuple[Any, Any], seed: int = 0) -> LLMEngine:
    model, tokenizer = builtin
    return LLMEngine(
        model,
        tokenizer,
        vocab_size=len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        max_batch_size=16,
        seed=seed,
    )


def run(engine: LLMEngine) -> dict[str, list[RequestOutput]]:
    collected: dict[str, list[RequestOutput]] = defaultdict(list)
    while engine.has_unfinished():
        for output in engine.step():
            collected[output.request_id].append(output)
    return collected


def text(outputs: list[RequestOutput]) -> str:
    return "".join(o.text for o in outputs)


def schema_constraint(schema: dict[str, Any]) -> Constraint:
    return Constraint("json_schema", json.dumps(schema))


def test_constrained_and_free_requests_share_a_batch(builtin: tuple[Any, Any]) -> None:
    """Each schema greedy and at temperature 1, beside free requests: every constrained answer is whole
    and valid, every free one runs its full length."""
    engine = engine_of(builtin, seed=7)
    prompt = builtin[1].encode("The answer, as JSON:")
    for name, schema in SCHEMAS.items():
        for temperature in (0.0, 1.0):
            params = SamplingParams(
                max_tokens=120, temperature=temperature, constraint=schema_constraint(schema)
            )
            engine.add_request(f"{name}-{temperature}", prompt, params)
        engine.add_request(f"free-{name}", prompt, SamplingParams(max_tokens=30, ignore_eos=True))
    collected = run(engine)
    for name, schema in SCHEMAS.items():
        for temperature in (0.0, 1.0):
            outputs = collected[f"{name}-{temperature}"]
            assert outputs[-1].finish_reason == "stop", text(outputs)
            jsonschema.validate(json.loads(text(outputs)), schema)
        free_outputs = collected[f"free-{name}"]
        assert sum(len(o.token_ids) for o in free_outputs) == 30
        assert free_outputs[-1].finish_reason == "length"


def test_free_rows_sample_as_without_any_constrained_neighbour(builtin: tuple[Any, Any]) -> None:
    prompt = builtin[1].encode("def main():")
    greedy = SamplingParams(max_tokens=12, temperature=0.0, ignore_eos=True)
    seeded = SamplingParams(max_tokens=12, temperature=1.0, seed=3, ignore_eos=True)
    alone = engine_of(builtin)
    alone.add_request("greedy", prompt, greedy)
    alone.add_request("seeded", prompt, seeded)
    expected = run(alone)
    mixed = engine_of(builtin)
    mixed.add_request("greedy", prompt, greedy)
    mixed.add_request("json", prompt, SamplingParams(max_tokens=12, constraint=ANY_JSON_OBJECT))
    mixed.add_request("seeded", prompt, seeded)
    got = run(mixed)
    for name in ("greedy", "seeded"):
        assert [o.token_ids for o in got[name]] == [o.token_ids for o in expected[name]]


def test_max_tokens_mid_json_ends_with_length_and_the_truncated_text(builtin: tuple[Any, Any]) -> None:
    engine = engine_of(builtin)
    schema = {
        "type": "object",
        "properties": {"text": {"type": "string", "minLength": 50}},
        "required": ["text"],
    }
    engine.add_request(
        "cut", builtin[1].encode("x"), SamplingParams(max_tokens=5, constraint=schema_constraint(schema))
    )
    outputs = run(engine)["cut"]
    assert outputs[-1].finish_reason == "length"
    assert sum(len(o.token_ids) for o in outputs) == 5
    assert text(outputs).startswith('{"text": "')


def test_end_of_text_only_where_the_grammar_accepts(builtin: tuple[Any, Any]) -> None:
    """A top-level number could go on ("12" -> "123"): the sequence ends where the model picks end-of-text,
    which the mask allows only after a whole number."""
    tokenizer = builtin[1]
    engine = engine_of(builtin, seed=1)
    constraint = schema_constraint({"type": "integer"})
    for i in range(8):
        engine.add_request(
            f"n{i}", tokenizer.encode("n ="), SamplingParams(max_tokens=30, constraint=constraint)
        )
    for outputs in run(engine).values():
        assert outputs[-1].finish_reason in ("stop", "length")
        if outputs[-1].finish_reason == "stop":
            assert isinstance(json.loads(text(outputs)), int)


def test_a_lark_grammar_with_an_embedded_schema(builtin: tuple[Any, Any]) -> None:
    engine = engine_of(builtin, seed=2)
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}},
        "required": ["n"],
        "additionalProperties": False,
    }
    grammar = f'start: "<call>" obj "</call>"\nobj: {lark_json(schema)}'
    engine.add_request(
        "lark", builtin[1].encode("go"), SamplingParams(max_tokens=60, constraint=Constraint("lark", grammar))
    )
    outputs = run(engine)["lark"]
    answer = text(outputs)
    assert outputs[-1].finish_reason == "stop"
    assert answer.startswith("<call>") and answer.endswith("</call>")
    assert isinstance(json.loads(answer.removeprefix("<call>").removesuffix("</call>"))["n"], int)
