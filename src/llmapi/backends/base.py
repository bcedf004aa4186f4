"""The contracts every backend meets. Services depend on these, never on a concrete backend."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from llmapi.engine.engine_stats import EngineStats
from llmapi.engine.sampling_params import SamplingParams
from llmapi.engine.token_logprob import TokenLogprob
from llmapi.model_specs import Task
from llmapi.types import Feature, FinishReason, MessageRole


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What the API says about a model."""

    id: str
    task: Task
    owned_by: str
    created: int
    context_length: int | None = None
    features: frozenset[Feature] = frozenset()
    """What the model does beyond reading and writing text."""
    description: str | None = None
    family: str | None = None
    """The architecture, as transformers names it (`llama`, `gpt2`, `bert`), where known."""
    parameters: int | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call an assistant message made: `arguments` is JSON text, as the model wrote it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """A function the model may call; `parameters` is its arguments' JSON schema."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: MessageRole
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    """On a tool message: the call it answers."""


@dataclass(frozen=True, slots=True)
class ChatPrompt:
    messages: tuple[ChatMessage, ...]
    tools: tuple[FunctionTool, ...] = ()
    """The functions rendered into the prompt (none when the request's tool_choice is none)."""


@dataclass(frozen=True, slots=True)
class TextPrompt:
    """A raw prompt: text, or token ids of the model's own tokenizer."""

    text: str | None = None
    token_ids: tuple[int, ...] | None = None


Prompt = ChatPrompt | TextPrompt


@dataclass(frozen=True, slots=True)
class GenerationChunk:
    """A piece of one generated sequence. The last chunk has finish_reason set and the final counts."""

    text: str
    finish_reason: FinishReason | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    logprobs: tuple[TokenLogprob, ...] = ()
    """The logprobs of the tokens that made `text` (when the request asked for them)."""


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: str
    score: float
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Counts:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ForwardedAnswer:
    """A whole answer passed through from an upstream: the JSON body for the client, and the tokens the
    upstream says it used (None if it did not say)."""

    body: bytes
    counts: Counts | None


@dataclass(slots=True)
class StreamTally:
    """What a passed-through stream has counted so far: the upstream's usage once its usage chunk has
    passed, and the chunks that carried choices (what a stream cut short before it is charged by)."""

    counts: Counts | None = None
    pieces: int = 0


class Backend(Protocol):
    """What every backend has: a card, a start (load weights, open connections) and a close."""

    @property
    def card(self) -> ModelCard: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class TextGenerationBackend(Backend, Protocol):
    def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncGenerator[GenerationChunk, None]:
        """Stream one sequence. Raises ContextLengthExceededError before the first chunk if the prompt
        does not fit. Closing the iterator early cancels the generation."""
        ...


class EmbeddingBackend(Backend, Protocol):
    async def embed(self, inputs: Sequence[str]) -> Embeddings: ...


class SentimentBackend(Backend, Protocol):
    async def analyze(self, texts: Sequence[str]) -> tuple[list[Sentiment], int]:
        """One result per text, and the number of input tokens (0 where the model has no tokenizer)."""
        ...


@runtime_checkable
class PassThroughBackend(Backend, Protocol):
    """A backend that forwards the client's request as sent (an OpenAI-compatible upstream). `path` is the
    API path under `/v1` (`chat/completions`, `completions`, `embeddings`, `responses`); `document` the
    request in its JSON form."""

    @property
    def responses_api(self) -> bool:
        """Whether the upstream has the Responses API itself (`/responses`)."""
        ...

    async def forward(self, path: str, document: Mapping[str, Any]) -> ForwardedAnswer: ...

    def forward_stream(
        self, path: str, document: Mapping[str, Any], tally: StreamTally
    ) -> AsyncGenerator[list[bytes], None]:
        """The `data` payloads of the events as the client gets them, those of one read from the upstream
        together (so they go on in one write); closing it early drops the upstream."""
        ...


@runtime_checkable
class HasEngineStats(Protocol):
    """A backend that runs its own engine (in this process) and can say how busy it is."""

    def stats(self) -> EngineStats: ...
