from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from transformers import PreTrainedTokenizerFast

import llmapi.backends.local
from llmapi.backends.base import ChatMessage, ChatPrompt, FunctionTool, ToolCall
from llmapi.backends.local.chat_template import render_chat

ASSETS = Path(llmapi.backends.local.__file__).parent / "assets" / "gpt2-124m-random"
WEATHER = FunctionTool(
    name="get_weather",
    description="The weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
CONVERSATION = (
    ChatMessage(role="user", content="Weather in Paris?"),
    ChatMessage(
        role="assistant", content="", tool_calls=(ToolCall("call_1", "get_weather", '{"city": "Paris"}'),)
    ),
    ChatMessage(role="tool", content='{"celsius": 21}', tool_call_id="call_1"),
)
# A template that renders tools itself, in the shape of Qwen's and Hermes' (trimmed).
NATIVE = (
    "{% if tools %}<|im_start|>system\nTOOLS:"
    "{% for t in tools %}{{ t.function.name }};{% endfor %}<|im_end|>\n"
    "{% endif %}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
    "{% for c in m.tool_calls or [] %}"
    "CALL {{ c.function.name }} {{ c.function.arguments | tojson }}{% endfor %}"
    "{% if m.tool_call_id %}RESULT OF {{ m.tool_call_id }}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture
def tokenizer() -> Any:
    return PreTrainedTokenizerFast.from_pretrained(ASSETS)  # plain ChatML: no tools in its template


def test_without_tools_the_template_renders_the_messages_as_before(tokenizer: Any) -> None:
    prompt = ChatPrompt((ChatMessage(role="user", content="Hi"),))
    assert render_chat(tokenizer, prompt) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_a_template_without_tools_gets_them_listed_in_a_system_message(tokenizer: Any) -> None:
    text = render_chat(tokenizer, ChatPrompt(CONVERSATION[:1], tools=(WEATHER,)))
    system, user = text.split("<|im_end|>\n")[:2]
    assert system.startswith("<|im_start|>system\n# Tools")
    listed = system.split("<tools>\n")[1].split("\n</tools>")[0]
    assert json.loads(listed) == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    assert "<tool_call>" in system
    assert user == "<|im_start|>user\nWeather in Paris?"


def test_the_tools_follow_the_clients_own_system_message(tokenizer: Any) -> None:
    prompt = ChatPrompt(
        (ChatMessage(role="system", content="Be brief."), *CONVERSATION[:1]), tools=(WEATHER,)
    )
    assert render_chat(tokenizer, prompt).startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")


def test_calls_and_results_go_back_into_the_prompt_in_the_fallback_convention(tokenizer: Any) -> None:
    second = ChatMessage(role="tool", content="sunny", tool_call_id="call_2")
    text = render_chat(tokenizer, ChatPrompt((*CONVERSATION, second)))
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        "</tool_call><|im_end|>\n"
        '<|im_start|>tool\n<tool_response>\n{"celsius": 21}\n</tool_response>\n'
        "<tool_response>\nsunny\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    ) in text


def test_a_template_that_renders_tools_renders_them_and_the_calls_itself(tokenizer: Any) -> None:
    tokenizer.chat_template = NATIVE
    text = render_chat(tokenizer, ChatPrompt(CONVERSATION, tools=(WEATHER,)))
    assert text.startswith("<|im_start|>system\nTOOLS:get_weather;<|im_end|>\n")
    assert 'CALL get_weather {"city": "Paris"}' in text  # arguments given to the template as a value
    assert '<|im_start|>tool\n{"celsius": 21}RESULT OF call_1' in text
    assert "<tool_call>" not in text


def test_where_the_template_refuses_a_tool_turn_the_results_are_a_user_turn(tokenizer: Any) -> None:
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m.role not in ('system', 'user', 'assistant') %}"
        "{{ raise_exception('roles must be system, user or assistant') }}{% endif %}"
        "[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant] "
    )
    text = render_chat(tokenizer, ChatPrompt(CONVERSATION))
    assert text.endswith('[user] <tool_response>\n{"celsius": 21}\n</tool_response>\n[assistant] ')
