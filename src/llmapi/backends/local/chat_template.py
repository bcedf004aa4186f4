"""A chat prompt as the text a local model reads: its own chat template, with tools where the template
renders them, else the fallback convention below.

The fallback (a template that knows no tools, as SmolLM2's plain ChatML): the functions are listed as JSON in
the system message, which asks for Hermes-style calls; an assistant turn's calls are written back the same way
and tool results go back as a `tool` turn of `<tool_response>` blocks (a user turn where the template
refuses other roles):

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>
"""

from __future__ import annotations

import json
from typing import Any

from jinja2 import TemplateError

from llmapi.backends.base import ChatMessage, ChatPrompt, FunctionTool, ToolCall

TOOLS_PROMPT = (
    "# Tools\n\n"
    "You may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n"
    "<tools>\n{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n"
    '<tool_call>\n{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>'
)

Message = dict[str, Any]


def template_source(tokenizer: Any) -> str:
    """The chat template's text ("" when the tokenizer has none); several named templates together."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        return "\n".join(str(t) for t in template.values())
    return template or ""


def render_chat(tokenizer: Any, prompt: ChatPrompt) -> str:
    """The prompt rendered, ending where the assistant's answer starts."""
    source = template_source(tokenizer)
    native_tools = "tools" in source
    native_calls = "tool_calls" in source
    if native_calls:
        return _apply(
            tokenizer, [_native(m) for m in prompt.messages], prompt.tools, native_tools=native_tools
        )
    try:
        return _apply(tokenizer, _fallback(prompt.messages, "tool"), prompt.tools, native_tools=native_tools)
    except TemplateError:  # a template that takes no tool turns (it raises on roles it does not expect)
        return _apply(tokenizer, _fallback(prompt.messages, "user"), prompt.tools, native_tools=native_tools)


def _apply(
    tokenizer: Any, messages: list[Message], tools: tuple[FunctionTool, ...], *, native_tools: bool
) -> str:
    options: dict[str, Any] = {"add_generation_prompt": True, "tokenize": False}
    if tools and native_tools:
        options["tools"] = [tool_schema(tool) for tool in tools]
    elif tools:
        messages = _with_tools_prompt(messages, tools)
    text: str = tokenizer.apply_chat_template(messages, **options)
    return text


def tool_schema(tool: FunctionTool) -> dict[str, Any]:
    """A tool as OpenAI's request and transformers' templates spell it."""
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = dict(tool.parameters or {"type": "object", "properties": {}})
    return {"type": "function", "function": function}


def call_text(call: ToolCall) -> str:
    """A call in the fallback convention (the form forced calls take, too)."""
    body = json.dumps({"name": call.name, "arguments": _arguments(call.arguments)}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def _arguments(arguments: str) -> Any:
    """A call's arguments as a value (templates write them with tojson); as sent when not JSON."""
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def _native(message: ChatMessage) -> Message:
    native: Message = {"role": message.role, "content": message.content}
    if message.tool_calls:
        native["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": _arguments(call.arguments)},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        native["tool_call_id"] = message.tool_call_id
    return native


def _fallback(messages: tuple[ChatMessage, ...], result_role: str) -> list[Message]:
    """Calls written into the assistant's text; consecutive tool results one turn of `result_role`."""
    rendered: list[Message] = []
    previous: ChatMessage | None = None
    for message in messages:
        if message.role == "tool":
            block = f"<tool_response>\n{message.content}\n</tool_response>"
            if previous is not None and previous.role == "tool":
                rendered[-1]["content"] += "\n" + block
            else:
                rendered.append({"role": result_role, "content": block})
        else:
            parts = [message.content] if message.content else []
            parts += [call_text(call) for call in message.tool_calls]
            rendered.append({"role": message.role, "content": "\n".join(parts)})
        previous = message
    return rendered


def _with_tools_prompt(messages: list[Message], tools: tuple[FunctionTool, ...]) -> list[Message]:
    listed = "\n".join(json.dumps(tool_schema(tool), ensure_ascii=False) for tool in tools)
    block = TOOLS_PROMPT.format(tools=listed)
    if messages and messages[0]["role"] in ("system", "developer"):
        first = {"role": messages[0]["role"], "content": f"{messages[0]['content']}\n\n{block}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": block}, *messages]
