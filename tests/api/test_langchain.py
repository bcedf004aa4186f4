"""LangChain's ChatOpenAI against `llmapi serve` with the real default chat model: tools bound with
`bind_tools`, and `with_structured_output` (by function calling, and by JSON schema, LangChain's default)."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field
from tests.real_model import REAL_MODEL
from tests.servers import ADMIN_KEY, RunningServer


class GetWeather(BaseModel):
    """Get the current weather in a given city."""

    city: str = Field(description="The city name")


class Capital(BaseModel):
    """A country and its capital city."""

    country: str
    capital: str


def model(server: RunningServer) -> ChatOpenAI:
    return ChatOpenAI(
        model=REAL_MODEL,
        base_url=server.api_url,
        api_key=ADMIN_KEY,
        temperature=0,
        max_tokens=80,
        max_retries=0,
    )


def test_bind_tools_with_a_forced_tool_gives_its_call(real_server: RunningServer) -> None:
    llm = model(real_server).bind_tools([GetWeather], tool_choice="GetWeather")
    answer = llm.invoke("What is the weather in Paris?")
    assert isinstance(answer, AIMessage)
    [call] = answer.tool_calls
    assert call["name"] == "GetWeather" and call["args"] == {"city": "Paris"}
    assert call["id"] and call["id"].startswith("call_")


def test_bind_tools_lets_the_model_call_a_tool_by_itself(real_server: RunningServer) -> None:
    shown = {"name": "GetWeather", "args": {"city": "London"}, "id": "call_london"}
    history = [
        HumanMessage("What is the weather in London?"),
        AIMessage(content="", tool_calls=[shown]),
        HumanMessage("What is the weather in Tokyo?"),
    ]
    answer = model(real_server).bind_tools([GetWeather]).invoke(history)
    assert isinstance(answer, AIMessage)
    assert [(c["name"], c["args"]) for c in answer.tool_calls] == [("GetWeather", {"city": "Tokyo"})]


def test_with_structured_output_by_function_calling(real_server: RunningServer) -> None:
    structured = model(real_server).with_structured_output(Capital, method="function_calling")
    answer = structured.invoke("What is the capital of France?")
    assert isinstance(answer, Capital)
    assert answer.capital == "Paris"


def test_with_structured_output_by_json_schema(real_server: RunningServer) -> None:
    answer = model(real_server).with_structured_output(Capital).invoke("What is the capital of France?")
    assert isinstance(answer, Capital)
    assert answer.capital == "Paris"
