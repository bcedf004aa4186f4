"""The servers under test, as child processes: `llmapi serve` and `transformers serve` (the peer).

`transformers serve` (transformers 5.24) needs `transformers[serving]` (fastapi, uvicorn, openai, pydantic,
rich and accelerate: without accelerate it refuses `device_map`); it serves a local directory given as the
positional model argument, and clients then name the model by that same path. Its chat endpoint rejects
unknown request fields with a 422, so it gets no `ignore_eos`: the saved model's generation config has no EOS
instead. It ignores `stream_options` but always sends usage with the last chunk.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.engine.load import Target
from bench.engine.servers import HOST, RunningServer, free_port, running

_MODELS_FILE = """models:
  - id: {name}
    task: text-generation
    backend: transformers
    source: builtin:{name}
"""


@contextmanager
def llmapi(
    workdir: Path, model: str, *, dtype: str, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[RunningServer, Target]]:
    """`llmapi serve` with only the built-in text model `model`, auth off, engine settings from
    LLMAPI_ENGINE__*."""
    models_file = workdir / f"llmapi-models-{model}.yaml"
    models_file.write_text(_MODELS_FILE.format(name=model))
    port = free_port()
    command = [sys.executable, "-m", "llmapi.cli", "serve", "--host", HOST, "--port", str(port)]
    command += ["--config", str(models_file)]
    env = {
        "HF_HUB_OFFLINE": "1",
        "LLMAPI_ENGINE__DTYPE": dtype,
        "LLMAPI_AUTH": "off",  # an engine benchmark: no credentials on the path
        "LLMAPI_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'llmapi.db'}",  # not the working directory
        **(extra_env or {}),
    }
    log = workdir / f"llmapi-{port}.log"
    with running(command, port=port, ready_path="/health/ready", log_path=log, env=env) as server:
        yield server, Target(server.api_url, model, {"ignore_eos": True})


@contextmanager
def transformers_serve(
    workdir: Path, model_dir: Path, *, dtype: str, continuous_batching: bool
) -> Iterator[tuple[RunningServer, Target]]:
    """`transformers serve MODEL_DIR` pinned to the saved built-in model (loaded before it answers)."""
    port = free_port()
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(model_dir)]
    command += ["--dtype", dtype, "--device", "cpu", "--host", HOST, "--port", str(port)]
    if continuous_batching:
        command.append("--continuous-batching")
    log = workdir / f"transformers-serve-{port}.log"
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with running(command, port=port, ready_path="/health", log_path=log, env=env) as server:
        yield server, Target(server.api_url, str(model_dir))
