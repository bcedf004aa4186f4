"""A chat request's `tools`, `tool_choice` and `parallel_tool_calls`, for a local model: what the prompt
offers, whether the answer is read for calls, and which calls the grammar forces (`required`, a named
function)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from llmapi.backends.base import FunctionTool
from llmapi.errors import InvalidRequestError, UnsupportedError
from llmapi.protocol.chat import ChatCompletionRequest

Mode = Literal["none", "auto", "required", "function"]
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MODES: dict[str, Mode] = {"none": "none", "auto": "auto", "required": "required"}


@dataclass(frozen=True, slots=True)
class ToolPlan:
    tools: tuple[FunctionTool, ...]
    """What the prompt offers (nothing when tool_choice is none)."""
    mode: Mode
    forced: tuple[FunctionTool, ...]
    """What a forced answer may call: every tool (required), one (a named function), none (none, auto)."""
    parallel: bool

    @property
    def names(self) -> frozenset[str]:
        return frozenset(tool.name for tool in self.tools)


NO_TOOLS = ToolPlan(tools=(), mode="none", forced=(), parallel=True)


def tool_plan(request: ChatCompletionRequest) -> ToolPlan:
    """The plan, or a 400 that names the faulty field."""
    tools = tuple(_tool(tool, i) for i, tool in enumerate(request.tools or ()))
    mode, name = _choice(request.tool_choice, bool(tools))
    parallel = request.parallel_tool_calls is not False
    if mode == "none" or not tools:
        return NO_TOOLS
    if mode == "auto":
        return ToolPlan(tools=tools, mode=mode, forced=(), parallel=parallel)
    if mode == "required":
        return ToolPlan(tools=tools, mode=mode, forced=tools, parallel=parallel)
    named = tuple(tool for tool in tools if tool.name == name)
    if not named:
        raise InvalidRequestError(
            f"tool_choice names the function '{name}', which is not among the request's tools.",
            param="tool_choice",
        )
    return ToolPlan(tools=tools, mode=mode, forced=named[:1], parallel=False)


def _tool(tool: dict[str, Any], i: int) -> FunctionTool:
    if tool.get("type", "function") != "function":
        raise UnsupportedError(
            f"Tools of type '{tool.get('type')}' are not served by local models; send function tools.",
            param=f"tools.{i}.type",
        )
    function = tool.get("function")
    if not isinstance(function, dict):
        raise InvalidRequestError("A function tool needs a 'function' object.", param=f"tools.{i}.function")
    name = function.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidRequestError(
            "A function's name must be 1 to 64 letters, digits, underscores or dashes.",
            param=f"tools.{i}.function.name",
        )
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequestError(
            "A function's description must be a string.", param=f"tools.{i}.function.description"
        )
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequestError(
            "A function's parameters must be a JSON schema object.", param=f"tools.{i}.function.parameters"
        )
    return FunctionTool(name=name, description=description, parameters=parameters)


def _choice(choice: str | dict[str, Any] | None, has_tools: bool) -> tuple[Mode, str | None]:
    if choice is None:
        return ("auto" if has_tools else "none"), None
    if isinstance(choice, str):
        if choice not in _MODES:
            raise InvalidRequestError(
                f"tool_choice '{choice}' is not one of none, auto, required or a function.",
                param="tool_choice",
            )
        if choice == "required" and not has_tools:
            raise InvalidRequestError("tool_choice 'required' needs tools to call.", param="tool_choice")
        return _MODES[choice], None
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if choice.get("type") != "function" or not isinstance(name, str):
        raise InvalidRequestError(
            'A tool_choice object is {"type": "function", "function": {"name": ...}}.', param="tool_choice"
        )
    if not has_tools:
        raise InvalidRequestError(
            "tool_choice names a function, but the request has no tools.", param="tool_choice"
        )
    return "function", name
