"""Forced tool calls are valid JSON for the function's parameters: twenty varied schemas
(bench/tools/schemas.py) through `llmapi serve` with the real default chat model (SmolLM2-135M-Instruct), by
the openai SDK.

    .venv/bin/python -m bench.tools.run [--concurrency 8] [--max-tokens 400]

Each function is forced three ways: named in tool_choice, greedy; named, sampled at temperature 1 (seeded);
tool_choice required with parallel calls allowed, sampled at temperature 1 (every call counts). A call is
valid when its arguments parse as JSON and pass jsonschema's Draft 2020-12 validator with format checks
(date, time, email, uuid, ipv4). Writes results.md and results.json next to this file.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
from jsonschema import Draft202012Validator, FormatChecker
from tests.real_model import REAL_MODEL, real_model_server
from tests.servers import ADMIN_KEY

from bench.gateway.report import _cpu_model
from bench.tools.schemas import CASES, Case

HERE = Path(__file__).parent
NO_PARAMETERS = {"type": "object", "properties": {}, "additionalProperties": False}
MODES = {
    "named, greedy": {"temperature": 0},
    "named, temperature 1": {"temperature": 1, "seed": 7},
    "required, parallel, temperature 1": {"temperature": 1, "seed": 7},
}


@dataclass
class Outcome:
    case: str
    mode: str
    calls: int
    valid: bool
    finish_reason: str
    completion_tokens: int
    seconds: float
    arguments: list[str]
    error: str = ""


def tool(case: Case) -> dict[str, Any]:
    function: dict[str, Any] = {"name": case.name, "description": case.description}
    if case.parameters is not None:
        function["parameters"] = case.parameters
    return {"type": "function", "function": function}


def run_one(client: openai.OpenAI, case: Case, mode: str, max_tokens: int) -> Outcome:
    forced: Any = (
        "required" if mode.startswith("required") else {"type": "function", "function": {"name": case.name}}
    )
    started = time.perf_counter()
    try:
        completion = client.chat.completions.create(
            model=REAL_MODEL,
            messages=[{"role": "user", "content": case.question}],
            tools=[tool(case)],
            tool_choice=forced,
            max_tokens=max_tokens,
            **MODES[mode],
        )
    except openai.APIStatusError as exc:
        return Outcome(case.name, mode, 0, False, f"HTTP {exc.status_code}", 0, 0.0, [], exc.message)
    seconds = time.perf_counter() - started
    choice = completion.choices[0]
    calls = choice.message.tool_calls or []
    arguments = [call.function.arguments for call in calls]
    validator = Draft202012Validator(case.parameters or NO_PARAMETERS, format_checker=FormatChecker())
    errors = []
    for call in calls:
        if call.function.name != case.name:
            errors.append(f"called {call.function.name}")
            continue
        try:
            errors += [error.message for error in validator.iter_errors(json.loads(call.function.arguments))]
        except ValueError as exc:
            errors.append(f"not JSON: {exc}")
    if not calls:
        errors.append(f"no call; content {choice.message.content!r}")
    usage = completion.usage
    return Outcome(
        case=case.name,
        mode=mode,
        calls=len(calls),
        valid=not errors and choice.finish_reason == "tool_calls",
        finish_reason=choice.finish_reason,
        completion_tokens=usage.completion_tokens if usage else 0,
        seconds=round(seconds, 2),
        arguments=arguments,
        error="; ".join(errors),
    )


def report(outcomes: list[Outcome], seconds: float, args: argparse.Namespace) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Forced tool calls: valid JSON for the function's parameters",
        "",
        f"`.venv/bin/python -m bench.tools.run` on {when}, {_cpu_model()} ({platform.machine()}), "
        f"Python {platform.python_version()}; {REAL_MODEL} (SmolLM2-135M-Instruct) in `llmapi serve`, "
        f"{args.concurrency} requests at a time, max_tokens {args.max_tokens}, {seconds:.0f} s in all.",
        "",
        "Each function of bench/tools/schemas.py is forced by tool_choice (named, or `required` with "
        "parallel calls allowed); its arguments are checked with jsonschema (Draft 2020-12, format checks "
        "on). The grammar (services/tool_grammar.py) lets the model write only a `<tool_call>` block whose "
        "arguments match the schema, so validity does not depend on the model; the model chooses the values.",
        "",
        "A call the model has not finished within max_tokens ends with finish_reason `length` and is not a "
        "call (its text is the answer's content): *complete* counts the answers the model finished, "
        "*valid when complete* checks the grammar's promise on those, *valid* is both.",
        "",
        "| mode | complete (finish_reason tool_calls) | valid when complete | valid | mean completion tokens "
        "| mean s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        rows = [o for o in outcomes if o.mode == mode]
        complete = [o for o in rows if o.finish_reason == "tool_calls"]
        valid = sum(o.valid for o in rows)
        tokens = sum(o.completion_tokens for o in rows) / len(rows)
        mean_s = sum(o.seconds for o in rows) / len(rows)
        lines.append(
            f"| {mode} | {len(complete)} of {len(rows)} | {sum(o.valid for o in complete)} of "
            f"{len(complete)} | {valid} of {len(rows)} | {tokens:.0f} | {mean_s:.1f} |"
        )
    lines += [
        "",
        "## Every call",
        "",
        "| function | exercises | mode | calls | valid | arguments (the first call) |",
    ]
    lines.append("|---|---|---|---:|---|---|")
    shapes = {case.name: case.shape for case in CASES}
    for o in outcomes:
        first = (o.arguments[0] if o.arguments else o.error)[:160].replace("|", "\\|").replace("\n", " ")
        reason = o.error if o.finish_reason == "tool_calls" else f"finish_reason {o.finish_reason}"
        mark = "yes" if o.valid else f"**no**: {reason[:160]}".replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {o.case} | {shapes[o.case]} | {o.mode} | {o.calls} | {mark} | `{first}` |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=400)
    args = parser.parse_args()
    jobs = [(case, mode) for mode in MODES for case in CASES]
    with tempfile.TemporaryDirectory() as directory, real_model_server(Path(directory)) as server:
        client = openai.OpenAI(base_url=server.api_url, api_key=ADMIN_KEY, max_retries=0, timeout=600)
        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            outcomes = list(pool.map(lambda job: run_one(client, job[0], job[1], args.max_tokens), jobs))
        seconds = time.perf_counter() - started
    (HERE / "results.json").write_text(json.dumps([asdict(o) for o in outcomes], indent=1) + "\n")
    (HERE / "results.md").write_text(report(outcomes, seconds, args))
    for mode in MODES:
        rows = [o for o in outcomes if o.mode == mode]
        print(f"{mode}: {sum(o.valid for o in rows)} of {len(rows)} valid", file=sys.stderr)


if __name__ == "__main__":
    main()
