"""POST /v1/responses, GET and DELETE /v1/responses/{response_id}: the Responses API, as far as a chat model
answers it (text and function calls). Shapes and field order as in the OpenAI reference; the stream's events
are in `protocol/response_events.py`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    field_validator,
    model_serializer,
)

from llmapi.protocol.common import MaxTokens, NameText, RequestModel, Text

MAX_INPUT_ITEMS = 2048
MAX_CONTENT_PARTS = 256
MAX_TOOLS = 512
MAX_METADATA_PAIRS = 16

InputRole = Literal["user", "assistant", "system", "developer"]
ItemStatus = Literal["in_progress", "completed", "incomplete"]
Id = Annotated[str, Field(min_length=1, max_length=256)]
FunctionName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]


class _Open(BaseModel):
    """Fields this server does not read (an item's `id` or `status`, a part's `annotations`) are kept."""

    model_config = ConfigDict(extra="allow")


def _other_than(*known: str) -> Any:
    """The `type` of the catch-all member of a union: any but the others' (so the schema's oneOf holds)."""
    return Field(min_length=1, max_length=64, json_schema_extra={"not": {"enum": list(known)}})


class ContentPart(_Open):
    """A part of a message: `input_text` (and `output_text` or `refusal` in an assistant's) are text; the
    others (`input_image`, `input_file`, `input_audio`) are what a multimodal model reads."""

    type: Annotated[str, Field(min_length=1, max_length=64)]
    text: Text | None = None
    refusal: Text | None = None


Content = Text | Annotated[list[ContentPart], Field(max_length=MAX_CONTENT_PARTS)]


class MessageItem(_Open):
    type: Literal["message"] = "message"
    role: InputRole
    content: Content


class FunctionCallItem(_Open):
    """A call the model made (an output item, sent back to continue the conversation)."""

    type: Literal["function_call"]
    call_id: Id
    name: FunctionName
    arguments: Text


class FunctionCallOutputItem(_Open):
    """The result of a function call, for the model to read."""

    type: Literal["function_call_output"]
    call_id: Id
    output: Content


class OtherItem(_Open):
    """An item of another type (`reasoning`, `item_reference`, a hosted tool's call): only an upstream that
    has the Responses API itself reads these."""

    type: Annotated[str, _other_than("message", "function_call", "function_call_output")]


def _kind(value: Any, known: tuple[str, ...], default: str | None = None) -> str:
    kind = value.get("type", default) if isinstance(value, dict) else getattr(value, "type", default)
    return kind if kind in known else "other"


def _item_kind(value: Any) -> str:
    return _kind(value, ("message", "function_call", "function_call_output"), default="message")


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[OtherItem, Tag("other")],
    Discriminator(_item_kind),
]


class FunctionTool(_Open):
    type: Literal["function"]
    name: FunctionName
    description: Text | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class OtherTool(_Open):
    """A hosted tool (`web_search`, `file_search`, ...): only an upstream that has them runs them."""

    type: Annotated[str, _other_than("function")]


def _tool_kind(value: Any) -> str:
    return _kind(value, ("function",))


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[OtherTool, Tag("other")], Discriminator(_tool_kind)
]


class FunctionToolChoice(_Open):
    type: Literal["function"]
    name: FunctionName


class OtherToolChoice(_Open):
    """`allowed_tools`, or a hosted tool: only an upstream that has the Responses API itself reads these."""

    type: Annotated[str, _other_than("function")]


ToolChoice = (
    Literal["none", "auto", "required"]
    | Annotated[
        Annotated[FunctionToolChoice, Tag("function")] | Annotated[OtherToolChoice, Tag("other")],
        Discriminator(_tool_kind),
    ]
)


class TextFormat(_Open):
    """`text` (the default), `json_object`, or `json_schema` with its `name`, `schema`, `strict`."""

    type: Literal["text", "json_object", "json_schema"] = "text"


class TextConfig(_Open):
    format: TextFormat = Field(default_factory=TextFormat)


Metadata = Annotated[
    dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]],
    Field(max_length=MAX_METADATA_PAIRS),
]


class CreateResponseRequest(RequestModel):
    model: str = Field(min_length=1)
    input: Text | Annotated[list[InputItem], Field(min_length=1, max_length=MAX_INPUT_ITEMS)]
    instructions: Text | None = Field(
        default=None, description="A system message before the input; not carried to a continuation."
    )
    max_output_tokens: MaxTokens | None = None
    metadata: Metadata | None = None
    parallel_tool_calls: bool | None = None
    previous_response_id: Id | None = Field(
        default=None, description="Continue the conversation of a stored response."
    )
    store: bool = Field(default=True, description="Keep the response, to GET it and to continue from it.")
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    text: TextConfig | None = None
    tool_choice: ToolChoice | None = None
    tools: Annotated[list[Tool], Field(max_length=MAX_TOOLS)] | None = None
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    user: NameText | None = None

    @field_validator("previous_response_id")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("a response id holds no NUL character")
        return value


class OutputText(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[dict[str, Any]] = Field(default_factory=list)
    logprobs: list[dict[str, Any]] = Field(default_factory=list)


class OutputRefusal(BaseModel):
    type: Literal["refusal"] = "refusal"
    refusal: str


class OutputMessage(BaseModel):
    id: str
    type: Literal["message"] = "message"
    status: ItemStatus
    content: list[Annotated[OutputText | OutputRefusal, Field(discriminator="type")]]
    role: Literal["assistant"] = "assistant"


class FunctionCall(BaseModel):
    id: str
    type: Literal["function_call"] = "function_call"
    status: ItemStatus
    arguments: str
    call_id: str
    name: str


OutputItem = Annotated[OutputMessage | FunctionCall, Field(discriminator="type")]


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int

    @classmethod
    def of(cls, input_tokens: int, output_tokens: int) -> ResponseUsage:
        return cls(
            input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=input_tokens + output_tokens
        )


class ResponseError(BaseModel):
    code: str
    message: str


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens", "content_filter"]


ResponseStatus = Literal["completed", "failed", "in_progress", "incomplete"]


class ModelResponse(BaseModel):
    """The Response object (`object: "response"`): what was asked, echoed, and what the model made."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: ResponseStatus
    completed_at: int | None = None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[OutputItem]
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    store: bool = True
    temperature: float = 1.0
    text: TextConfig = Field(default_factory=TextConfig)
    tool_choice: ToolChoice = "auto"
    tools: list[Tool] = Field(default_factory=list)
    top_p: float = 1.0
    truncation: Literal["disabled"] = "disabled"
    usage: ResponseUsage | None = Field(default=None, description="Left out until the response is done.")
    user: str | None = Field(default=None, description="Left out when the request gave none.")
    metadata: dict[str, str] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """OpenAI's schema has no null `usage` or `user`."""
        data: dict[str, Any] = handler(self)
        for name in ("usage", "user"):
            if data.get(name) is None:
                data.pop(name, None)
        return data


class DeletedResponse(BaseModel):
    id: str
    object: Literal["response"] = "response"
    deleted: Literal[True] = True
