from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_serve_refuses_a_bad_config_with_a_clear_message(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text("models: [{id: a, task: embedding, backend: vader}]")
    result = subprocess.run(
        [sys.executable, "-m", "llmapi.cli", "serve", "--config", str(models)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "cannot serve task 'embedding'" in result.stderr
