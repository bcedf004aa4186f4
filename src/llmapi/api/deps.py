"""Annotated dependencies the routes take."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from llmapi.api.usage_middleware import USAGE_NOTE
from llmapi.backends.registry import ModelRegistry
from llmapi.config import Settings
from llmapi.services.identity import Identity
from llmapi.services.usage import UsageNote


def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_usage_note(request: Request) -> UsageNote:
    note = request.scope.get("state", {}).get(USAGE_NOTE)
    return note if isinstance(note, UsageNote) else UsageNote()


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
UsageNoteDep = Annotated[UsageNote, Depends(get_usage_note)]


def get_identity(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


IdentityDep = Annotated[Identity, Depends(get_identity)]
