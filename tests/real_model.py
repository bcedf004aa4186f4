"""The real default chat model, SmolLM2-135M-Instruct, for end-to-end tests that need sensible answers.

conftest.py offers it as `real_server` (a `llmapi serve` process), `real_client` / `real_async_client`
(openai SDK clients of that server) and `real_app` (the whole stack in this process). The first use on a
machine converts the model into the model cache (about 30 s, LLMAPI_MODEL_CACHE or ~/.cache/llmapi/models);
later sessions load it in a second or two.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llmapi.backends.base import Backend
from llmapi.backends.registry import build_backend
from llmapi.config import Settings
from llmapi.model_specs import DEFAULT_TEXT_MODEL, ModelSpec, default_models
from tests.servers import RunningServer, llmapi_server

REAL_MODEL = DEFAULT_TEXT_MODEL
REAL_MODELS_FILE = f"""\
models:
  - {{id: {REAL_MODEL}, task: text-generation, backend: transformers, source: 'builtin:{REAL_MODEL}'}}
"""


def real_model_spec() -> ModelSpec:
    return next(spec for spec in default_models() if spec.id == REAL_MODEL)


@contextmanager
def real_model_server(directory: Path, env: dict[str, str] | None = None) -> Iterator[RunningServer]:
    """`llmapi serve` with the real chat model as its only model."""
    models = directory / "real-models.yaml"
    models.write_text(REAL_MODELS_FILE)
    with llmapi_server(directory, models_file=models, env=env) as running:
        yield running


def real_text_backend(settings: Settings | None = None) -> Backend:
    """The real chat model's backend as `llmapi serve` builds it; an app's lifespan starts it."""
    return build_backend(real_model_spec(), settings or Settings())
