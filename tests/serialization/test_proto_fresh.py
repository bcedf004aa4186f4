from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "src" / "llmapi" / "serialization" / "proto"


@pytest.mark.parametrize("name", ["llmapi_pb2.py", "llmapi_pb2.pyi"])
def test_committed_protobuf_code_is_what_make_proto_generates(name: str, tmp_path: Path) -> None:
    generate = [sys.executable, "-m", "grpc_tools.protoc", "-Iproto"]
    generate += [f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", "proto/llmapi/v1/llmapi.proto"]
    result = subprocess.run(generate, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr

    fresh = (tmp_path / "llmapi" / "v1" / name).read_bytes()
    assert (COMMITTED / name).read_bytes() == fresh, (
        f"{COMMITTED / name} is not what proto/llmapi/v1/llmapi.proto generates: run `make proto` and commit"
    )
