"""llama.cpp's server (llama-cpp-python[server]) as a peer, from its own venv (`make bench-llamacpp`).

Its server runs one sequence at a time (no parallel slots), so it is measured at one stream. It cannot ignore
EOS: the model's end tokens get a logit bias of -100 instead (greedy then never picks them). It sends no usage
in streams, so its tokens are counted from the content chunks, one token each.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.engine.load import Target
from bench.engine.servers import HOST, RunningServer, free_port, running

VENV = Path(__file__).resolve().parents[1] / ".venv-llamacpp"
VENV_PYTHON = VENV / "bin" / "python"
_FTYPES = {"bfloat16": 32, "float32": 0}  # LLAMA_FTYPE_MOSTLY_BF16, LLAMA_FTYPE_ALL_F32
_REQUANTIZE = """
import sys, llama_cpp
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = {ftype}
params.allow_requantize = True
status = llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), params)
sys.exit(status)
"""


def available() -> bool:
    """Whether `make bench-llamacpp` has installed it."""
    return (VENV / ".installed").is_file()


def requantize(source: Path, target: Path, dtype: str) -> Path:
    """`source` (any GGUF) re-quantized to `dtype` (bfloat16 or float32) at `target`."""
    if not target.is_file():
        script = _REQUANTIZE.format(ftype=_FTYPES[dtype])
        subprocess.run([str(VENV_PYTHON), "-c", script, str(source), str(target)], check=True)
    return target


@contextmanager
def server(
    gguf: Path, workdir: Path, *, threads: int, eos_token_ids: tuple[int, ...]
) -> Iterator[tuple[RunningServer, Target]]:
    port = free_port()
    command = [str(VENV_PYTHON), "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "bench"]
    command += ["--host", HOST, "--port", str(port), "--n_threads", str(threads)]
    command += ["--n_threads_batch", str(threads), "--n_ctx", "2048", "--verbose", "false"]
    log = workdir / f"llama-cpp-{port}.log"
    with running(command, port=port, ready_path="/v1/models", log_path=log, env={}) as started:
        bias = {str(token): -100 for token in eos_token_ids}
        yield started, Target(started.api_url, "bench", {"logit_bias": bias})
