from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from llmapi.model_specs import Task


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    task: Task
    context_length: int | None = None
    description: str | None = None
    family: str | None = None
    """The architecture (`llama`, `gpt2`, `bert`), where known."""
    parameters: int | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]
