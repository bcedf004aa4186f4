"""The shared vocabulary: names the engine, the wire schemas, auth, config and storage all speak.

One definition each. This module imports nothing from llmapi, so every layer may import it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]
"""Why a generation ended: a stop condition (EOS or a stop string), the token limit or context end, or (from
models that do them) a tool call or a content filter."""

Feature = Literal["tools", "logprobs", "structured output", "logit_bias", "non-text content", "suffix"]
"""What a request may ask of a model beyond reading and writing text; a model card lists those it does."""

Role = Literal["admin", "developer", "service"]
"""What a credential is: each role bundles scopes (llmapi.auth.scopes) and default rate limits (config)."""

MessageRole = Literal["system", "developer", "user", "assistant", "tool"]
"""Who speaks a chat message (not to be confused with a credential's Role)."""

Quantization = Literal["none", "int8", "int4"]
"""How the engine stores linear layers' weights: as loaded, or int8 with activations quantized per call."""

ModelCode = Literal["auto", "transformers"]
"""Whose model code the engine runs: its own where it has one for the family (auto), or transformers'."""


class RateLimits(BaseModel):
    """Per-credential limits; None is unset. A role's limits (settings) are the defaults, and a credential's
    own limits override them field by field. Also the wire shape (admin API, /v1/me) and the stored JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    max_concurrent: int | None = Field(default=None, ge=1)
    tokens_per_day: int | None = Field(default=None, ge=1)
    tokens_per_month: int | None = Field(default=None, ge=1)
