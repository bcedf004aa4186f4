"""Annotated dependencies the routes take."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from llmapi.backends.registry import ModelRegistry
from llmapi.config import Settings


def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
