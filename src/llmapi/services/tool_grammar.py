"""The grammar of a forced tool call (`tool_choice` required or a named function): the answer is one call
(or, with parallel calls, one or more), each a `<tool_call>` block in the fallback convention whose arguments
are valid JSON for the function's `parameters`, and nothing else:

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

A Lark grammar in llguidance's dialect, each function's schema embedded with `%json`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from llmapi.backends.base import FunctionTool
from llmapi.engine.constraint import JSON_LAYOUT, Constraint, check_constraint
from llmapi.engine.errors import ConstraintError
from llmapi.errors import UnsupportedError
from llmapi.services.tool_choice import ToolPlan

NO_PARAMETERS: Mapping[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
"""What a function without `parameters` takes: an empty object."""


def forced_calls(plan: ToolPlan) -> Constraint | None:
    """The constraint of the plan's forced calls (None when nothing is forced); a 400 naming the function
    whose parameters the grammar engine cannot enforce."""
    if not plan.forced:
        return None
    for tool in plan.forced:
        try:
            check_constraint(Constraint("lark", _grammar((tool,), parallel=False)))
        except ConstraintError as exc:
            index = next(i for i, t in enumerate(plan.tools) if t.name == tool.name)
            raise UnsupportedError(
                f"The parameters of the function '{tool.name}' cannot be enforced: {_first_line(exc)}",
                param=f"tools.{index}.function.parameters",
            ) from exc
    return Constraint("lark", _grammar(plan.forced, parallel=plan.parallel))


def _grammar(tools: tuple[FunctionTool, ...], *, parallel: bool) -> str:
    rules = [
        "start: call" + (' ("\\n" call)*' if parallel else ""),
        'call: "<tool_call>\\n" ('
        + " | ".join(f"call_{i}" for i in range(len(tools)))
        + ') "\\n</tool_call>"',
    ]
    for i, tool in enumerate(tools):
        head = json.dumps(f'{{"name": {json.dumps(tool.name)}, "arguments": ')
        rules.append(f'call_{i}: {head} arguments_{i} "}}"')
        rules.append(f"arguments_{i}: %json {_schema(tool)}")
    return "\n".join(rules) + "\n"


def _schema(tool: FunctionTool) -> str:
    schema = dict(tool.parameters or NO_PARAMETERS)
    schema["x-guidance"] = {**JSON_LAYOUT, **schema.get("x-guidance", {})}
    return json.dumps(schema)


def _first_line(exc: ConstraintError) -> str:
    """What llguidance says is wrong, without the place in our grammar and the grammar it quotes after it."""
    lines = str(exc).strip().splitlines() or ["the grammar engine refused them"]
    return re.sub(r"^at \d+\(\d+\): ", "", lines[0])
