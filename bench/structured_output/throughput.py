"""Structured output through the HTTP API: 16 concurrent streams with `response_format: json_schema` against
the same requests unconstrained, on the real default chat model, side by side in one `llmapi serve`.

    .venv/bin/python -m bench.structured_output.throughput [--rounds 3] [--streams 16]

Each round sends 16 streamed chat requests at once (four nested schemas, four prompts each), constrained,
and the same 16 unconstrained with `ignore_eos` and each stream's max_tokens set to the number of tokens its
constrained twin produced (seeded, a twin produces the same every round): both sides generate the same
tokens per stream, so the ratio of their throughputs is the price of the grammar alone. The side that goes
first alternates between rounds; rounds at temperature 0 and 1 alternate; medians are reported. Every
constrained answer is validated against its schema (jsonschema). The response cache is off. Writes
throughput.json, throughput.md and throughput.png next to this file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
from openai import AsyncOpenAI

from bench.engine.servers import HOST, free_port, running
from bench.structured_output.schemas import NESTED
from llmapi.model_specs import DEFAULT_TEXT_MODEL

HERE = Path(__file__).parent
MAX_TOKENS = 320
STRING_BOUND = 48
ITEMS_BOUND = 6
NUMBER_BOUND = 1_000_000
PROMPTS = {
    "person": ["a chemist from Lyon", "a pilot from Oslo", "a baker from Rome", "a nurse from Lima"],
    "order": ["garden tools", "three books", "coffee and tea", "a desk and a lamp"],
    "event": ["a drag across a map", "a click on a button", "a drag of a window", "a click on a link"],
    "review": ["a kettle", "a bicycle", "a pair of boots", "a laptop"],
}


@dataclass
class Answer:
    text: str
    finish_reason: str | None
    tokens: int


def bounded(schema: Any) -> Any:
    """The schema with every string given a maxLength, every array a maxItems and every number a range (and
    numbers two decimals, multipleOf 0.01): sampled at temperature 1, a 135M model may otherwise write one
    string, list or number until max_tokens (a JSON number may have any number of digits), and an answer
    cut there is "length" and not JSON."""
    if isinstance(schema, list):
        return [bounded(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: bounded(value) for key, value in schema.items()}
    types = schema.get("type")
    if (types == "string" or (isinstance(types, list) and "string" in types)) and "enum" not in schema:
        result.setdefault("maxLength", STRING_BOUND)
    if types == "array":
        result.setdefault("maxItems", ITEMS_BOUND)
    if types in ("number", "integer"):
        result.setdefault("minimum", -NUMBER_BOUND)
        result.setdefault("maximum", NUMBER_BOUND)
    if types == "number":
        result.setdefault("multipleOf", 0.01)
    return result


def requests(streams: int) -> list[tuple[str, dict[str, Any], str]]:
    cases = []
    for i in range(streams):
        name = list(NESTED)[i % len(NESTED)]
        subject = PROMPTS[name][(i // len(NESTED)) % len(PROMPTS[name])]
        cases.append((name, bounded(NESTED[name][0]), f"Describe {subject} as JSON."))
    return cases


async def stream_one(client: AsyncOpenAI, messages: Any, **kwargs: Any) -> Answer:
    stream = await client.chat.completions.create(
        model=DEFAULT_TEXT_MODEL,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        **kwargs,
    )
    pieces, finish, tokens = [], None, 0
    async for chunk in stream:
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return Answer("".join(pieces), finish, tokens)


async def constrained_round(
    client: AsyncOpenAI, cases: list[tuple[str, dict[str, Any], str]], temperature: float
) -> tuple[list[Answer], float]:
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(
            stream_one(
                client,
                [{"role": "user", "content": prompt}],
                temperature=temperature,
                seed=i,
                max_tokens=MAX_TOKENS,
                response_format={"type": "json_schema", "json_schema": {"name": name, "schema": schema}},
            )
            for i, (name, schema, prompt) in enumerate(cases)
        )
    )
    return answers, time.perf_counter() - started


async def free_round(
    client: AsyncOpenAI, cases: list[tuple[str, dict[str, Any], str]], temperature: float, lengths: list[int]
) -> tuple[list[Answer], float]:
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(
            stream_one(
                client,
                [{"role": "user", "content": prompt}],
                temperature=temperature,
                seed=i,
                max_tokens=length,
                extra_body={"ignore_eos": True},
            )
            for i, ((_, _, prompt), length) in enumerate(zip(cases, lengths, strict=True))
        )
    )
    return answers, time.perf_counter() - started


async def one_round(
    client: AsyncOpenAI,
    cases: list[tuple[str, dict[str, Any], str]],
    temperature: float,
    lengths: list[int],
    *,
    free_first: bool,
) -> dict[str, Any]:
    """Seeded, a constrained answer is the same every round: `lengths` (a previous round's) let the free
    requests go first in half of the rounds, so neither side always runs on the warmer machine."""
    load = os.getloadavg()[0]
    if free_first:
        free, free_s = await free_round(client, cases, temperature, lengths)
        constrained, constrained_s = await constrained_round(client, cases, temperature)
    else:
        constrained, constrained_s = await constrained_round(client, cases, temperature)
        free, free_s = await free_round(client, cases, temperature, lengths)
    checks = [_valid(answer, schema) for answer, (_, schema, _) in zip(constrained, cases, strict=True)]
    tokens = sum(a.tokens for a in constrained)
    return {
        "temperature": temperature,
        "free_first": free_first,
        "load_before": load,
        "tokens": tokens,
        "free_tokens": sum(a.tokens for a in free),
        "constrained_tokens_per_s": tokens / constrained_s,
        "free_tokens_per_s": sum(a.tokens for a in free) / free_s,
        "valid": sum(checks),
        "answers": len(cases),
        "finish_reasons": sorted({a.finish_reason or "none" for a in constrained}),
        "invalid": [a.text for a, ok in zip(constrained, checks, strict=True) if not ok],
        "example": constrained[0].text,
        "lengths": [a.tokens for a in constrained],
    }


def _valid(answer: Answer, schema: dict[str, Any]) -> bool:
    """Numbers are read as decimals: in floats, 2.49 is not a multiple of 0.01 for jsonschema."""
    try:
        exact_schema = json.loads(json.dumps(schema), parse_float=Decimal)
        jsonschema.validate(json.loads(answer.text, parse_float=Decimal), exact_schema)
    except (ValueError, jsonschema.ValidationError):
        return False
    return answer.finish_reason == "stop"


async def measure(base_url: str, rounds: int, streams: int) -> list[dict[str, Any]]:
    client = AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600)
    cases = requests(streams)
    lengths = {}
    for temperature in (0.0, 1.0):  # warm-up: grammars compiled, each stream's length learnt
        answers, _ = await constrained_round(client, cases, temperature)
        lengths[temperature] = [a.tokens for a in answers]
    results = []
    for r in range(rounds):
        for temperature in (0.0, 1.0):
            result = await one_round(client, cases, temperature, lengths[temperature], free_first=r % 2 == 0)
            lengths[temperature] = result.pop("lengths")
            print(
                json.dumps({k: v for k, v in result.items() if k not in ("example", "invalid")}), flush=True
            )
            results.append(result)
    return results


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    rows = {}
    for temperature in (0.0, 1.0):
        mine = [r for r in results if r["temperature"] == temperature]
        constrained = statistics.median(r["constrained_tokens_per_s"] for r in mine)
        free = statistics.median(r["free_tokens_per_s"] for r in mine)
        rows[str(temperature)] = {
            "constrained_tokens_per_s": constrained,
            "free_tokens_per_s": free,
            "ratio": statistics.median(r["constrained_tokens_per_s"] / r["free_tokens_per_s"] for r in mine),
            "valid": sum(r["valid"] for r in mine),
            "answers": sum(r["answers"] for r in mine),
            "tokens_per_round": statistics.median(r["tokens"] for r in mine),
        }
    return rows


def markdown(rows: dict[str, Any], *, rounds: int, streams: int, command: str) -> str:
    lines = [
        f"{streams} concurrent streams, {DEFAULT_TEXT_MODEL} on llmapi's engine (`llmapi serve`, defaults), "
        f"median of {rounds} rounds per temperature; `{command}`",
        "",
        "| temperature | json_schema tokens/s | unconstrained tokens/s | ratio | answers valid |",
        "|---|---|---|---|---|",
    ]
    for temperature, row in rows.items():
        lines.append(
            f"| {temperature} | {row['constrained_tokens_per_s']:.0f} | {row['free_tokens_per_s']:.0f} | "
            f"{row['ratio']:.2f} | {row['valid']} / {row['answers']} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"temperature {t}" for t in rows]
    x = range(len(labels))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar([i - 0.2 for i in x], [r["free_tokens_per_s"] for r in rows.values()], 0.4, label="unconstrained")
    ax.bar(
        [i + 0.2 for i in x], [r["constrained_tokens_per_s"] for r in rows.values()], 0.4, label="json_schema"
    )
    for i, row in enumerate(rows.values()):
        ax.annotate(
            f"{row['ratio']:.2f}x", (i + 0.2, row["constrained_tokens_per_s"]), ha="center", va="bottom"
        )
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("completion tokens/s (16 streams)")
    ax.set_title("Structured output: constrained vs unconstrained")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--streams", type=int, default=16)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server (finally blocks) on SIGTERM
    models = f"models:\n  - {{id: {DEFAULT_TEXT_MODEL}, task: text-generation, backend: transformers, "
    models += f"source: 'builtin:{DEFAULT_TEXT_MODEL}'}}\n"
    with tempfile.TemporaryDirectory() as workdir:
        models_file = Path(workdir) / "models.yaml"
        models_file.write_text(models)
        port = free_port()
        command = [sys.executable, "-m", "llmapi.cli", "serve", "--host", HOST, "--port", str(port)]
        command += ["--config", str(models_file)]
        env = {
            "HF_HUB_OFFLINE": "1",
            "LLMAPI_AUTH": "off",
            "LLMAPI_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/llmapi.db",
            "LLMAPI_ENGINE__MAX_BATCH_SIZE": str(args.streams),
            "LLMAPI_CACHE__ENABLED": "false",  # seeded requests repeat: every answer must be generated
        }
        log = Path(workdir) / "server.log"
        with running(command, port=port, ready_path="/health/ready", log_path=log, env=env) as server:
            results = asyncio.run(measure(server.api_url, args.rounds, args.streams))
    rows = summary(results)
    command_line = "python -m bench.structured_output.throughput " + " ".join(sys.argv[1:])
    (HERE / "throughput.json").write_text(json.dumps({"summary": rows, "rounds": results}, indent=2) + "\n")
    (HERE / "throughput.md").write_text(
        markdown(rows, rounds=args.rounds, streams=args.streams, command=command_line.strip())
    )
    plot(rows, HERE / "throughput.png")
    print(markdown(rows, rounds=args.rounds, streams=args.streams, command=command_line.strip()))


if __name__ == "__main__":
    main()
