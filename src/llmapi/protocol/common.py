"""Pieces shared by several resources: the request base, sampling fields and usage."""

from __future__ import annotations

import logging
import re
import types
from datetime import UTC, datetime
from itertools import islice
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from llmapi.types import Feature

logger = logging.getLogger(__name__)

MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 256
MAX_CHOICES = 16
MAX_TEXT_CHARS = 1_000_000
MAX_TOKENS_LIMIT = 131_072
MAX_TOKEN_IDS = 131_072

# C0 and C1 control characters, DEL; tab, newline and carriage return are text.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _no_control_characters(value: str) -> str:
    if match := _CONTROL_CHARACTERS.search(value):
        raise ValueError(
            f"the text holds the control character U+{ord(match.group()):04X} at position {match.start()}; "
            "only tab, newline and carriage return are allowed"
        )
    return value


# Text a model reads: bounded in length, no control characters but tab and newlines.
_PLAIN = AfterValidator(_no_control_characters)
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS), _PLAIN]
NonEmptyText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS), _PLAIN]
NameText = Annotated[str, StringConstraints(max_length=256), _PLAIN]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200), _PLAIN]
"""A name people give a thing (a key, a client): plain text, 1 to 200 characters."""
StopText = Annotated[str, StringConstraints(max_length=MAX_STOP_CHARS), _PLAIN]
NonEmptyStopText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_STOP_CHARS), _PLAIN]
MaxTokens = Annotated[int, Field(ge=1, le=MAX_TOKENS_LIMIT)]
TokenIds = Annotated[
    list[Annotated[int, Field(ge=0, lt=2**31)]], Field(min_length=1, max_length=MAX_TOKEN_IDS)
]


MAX_LOGIT_BIAS = 2048


def _token_id_keys(value: dict[str, float]) -> dict[str, float]:
    for key in value:
        if not key.isascii() or not key.isdigit() or int(key) >= 2**31:
            raise ValueError(f"logit_bias keys are token ids (digits), not {key[:32]!r}")
    return value


LogitBias = Annotated[
    dict[str, Annotated[float, Field(ge=-100.0, le=100.0)]],
    Field(max_length=MAX_LOGIT_BIAS, description="Token id -> bias from -100 (ban) to 100 (force)."),
    AfterValidator(_token_id_keys),
]


def logit_bias_pairs(bias: dict[str, float] | None) -> tuple[tuple[int, float], ...]:
    """The engine's form: (token id, bias) pairs, one per id."""
    return tuple({int(key): value for key, value in (bias or {}).items()}.items())


def _in_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range in UTC; give one between years 1 and 9999") from None


UTCTime = Annotated[datetime, AfterValidator(_in_utc)]
"""A point in time; without a zone it is taken as UTC."""


def estimated_tokens(text: str) -> int:
    """A tokenizer-free estimate for reserving rate-limit tokens (about four characters a token, as
    OpenAI estimates); the reservation is settled to the real count when the response is over."""
    return len(text) // 4 + 1


def _accepts_none(annotation: Any) -> bool:
    if annotation is None or annotation is type(None) or annotation is Any:
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return _accepts_none(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return any(_accepts_none(arg) for arg in get_args(annotation))
    return False


class NullMeansDefault(BaseModel):
    """An explicit `null` for a field that has a default but takes no null (`n`, `stream`, `echo`) means
    the default, as OpenAI's API has it."""

    _defaulted_by_null: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._defaulted_by_null = frozenset(
            name
            for name, field in cls.model_fields.items()
            if not field.is_required() and not _accepts_none(field.annotation)
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The API description says that these fields take null too."""
        json_schema = handler(core_schema)
        properties = handler.resolve_ref_schema(json_schema).get("properties", {})
        for name in cls._defaulted_by_null & properties.keys():
            field = properties[name]
            kept = {key: field.pop(key) for key in ("title", "description", "default") if key in field}
            properties[name] = {"anyOf": [field, {"type": "null"}], **kept}
        return json_schema

    @model_validator(mode="before")
    @classmethod
    def _null_is_the_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(data.get(name, 0) is None for name in cls._defaulted_by_null):
            return {k: v for k, v in data.items() if v is not None or k not in cls._defaulted_by_null}
        return data


class RequestModel(NullMeansDefault):
    """A request body. Unknown fields are accepted and logged, so newer clients keep working."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _log_unknown_fields(self) -> RequestModel:
        if self.model_extra:
            # The names are the client's: a few of them, cut short, and how many there are.
            named = [name[:64] for name in islice(self.model_extra, 5)]
            logger.info("ignoring %d unknown request field(s), first: %s", len(self.model_extra), named)
        return self


StopField = Annotated[
    StopText | Annotated[list[NonEmptyStopText], Field(max_length=MAX_STOP_SEQUENCES)] | None,
    Field(description="Up to 4 sequences where the model stops; the returned text excludes them."),
]


class SamplingFields(RequestModel):
    """The sampling parameters every text-generation request takes."""

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    top_k: int | None = Field(
        default=None, ge=0, le=1_000_000, description="Extension: sample from the k likeliest tokens."
    )
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    seed: int | None = Field(default=None, ge=-(2**63), le=2**64 - 1)
    stop: StopField = None
    ignore_eos: bool = Field(default=False, description="Extension (as vLLM): keep going past end-of-text.")

    def features(self) -> set[Feature]:
        """What the request asks of the model beyond reading and writing text."""
        return set()

    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        if isinstance(self.stop, str):
            return (self.stop,) if self.stop else ()
        return tuple(self.stop)


class StreamOptions(NullMeansDefault):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )


class PromptUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int
