from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
import pytest
from jsonschema import Draft202012Validator

from tests.real_model import real_model_server, real_text_backend
from tests.servers import ADMIN_KEY, RunningServer, llmapi_server

if TYPE_CHECKING:
    from tests.api.inprocess import InProcess

SCHEMA_FILE = Path(__file__).parent / "data" / "openapi-subset.json"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server on the test models (servers.TEST_MODELS), shared by the whole session."""
    with llmapi_server(tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture(scope="session")
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.api_url, api_key=ADMIN_KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def async_client(server: RunningServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.api_url, api_key=ADMIN_KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server serving the real default chat model (tests/real_model.py), shared by the session."""
    with real_model_server(tmp_path_factory.mktemp("real-server")) as running:
        yield running


@pytest.fixture(scope="session")
def real_client(real_server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=real_server.api_url, api_key=ADMIN_KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def real_async_client(real_server: RunningServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=real_server.api_url, api_key=ADMIN_KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
async def real_app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InProcess]:
    """The whole HTTP stack in this process serving the real default chat model, shared by the session."""
    from tests.api.inprocess import in_process  # the app's imports, only for the tests that use it

    async with in_process(tmp_path_factory.mktemp("real-app"), real_text_backend()) as running:
        yield running


def _allow_nullable(node: Any) -> Any:
    """The spec marks some fields `nullable: true` (OpenAPI 3.0); JSON Schema spells that as a null branch."""
    if isinstance(node, list):
        return [_allow_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _allow_nullable(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


class OpenAISchemas:
    def __init__(self, document: dict[str, Any]) -> None:
        self._document = _allow_nullable(document)

    def validate(self, name: str, instance: Any) -> None:
        root = {**self._document, "$ref": f"#/components/schemas/{name}"}
        Draft202012Validator(root).validate(instance)


@pytest.fixture(scope="session")
def openai_schemas() -> OpenAISchemas:
    return OpenAISchemas(json.loads(SCHEMA_FILE.read_text()))
