from __future__ import annotations

from pathlib import Path

import pytest

from llmapi.config import ConfigError, Settings, load_settings, read_models_file
from llmapi.model_specs import ModelSpec


def test_defaults_are_the_offline_models() -> None:
    settings = Settings()
    assert [(m.id, m.task) for m in settings.models] == [
        ("smollm2-135m-instruct", "text-generation"),
        ("all-MiniLM-L6-v2", "embedding"),
        ("vader", "sentiment"),
    ]
    assert settings.port == 8000


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMAPI_PORT", "9001")
    monkeypatch.setenv("LLMAPI_HOST", "0.0.0.0")
    monkeypatch.setenv("LLMAPI_ENGINE__DTYPE", "float32")
    settings = load_settings()
    assert (settings.host, settings.port, settings.engine.dtype) == ("0.0.0.0", 9001, "float32")


def test_nonsense_is_refused_with_a_message_that_says_what_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMAPI_PORT", "99999")
    with pytest.raises(ConfigError, match="port"):
        load_settings()


def test_models_file_yaml(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n"
        "  - id: remote-chat\n"
        "    task: text-generation\n"
        "    backend: openai\n"
        "    options: {base_url: 'http://127.0.0.1:9/v1'}\n"
        "  - {id: vader, task: sentiment, backend: vader}\n"
    )
    models = read_models_file(path)
    assert [m.id for m in models] == ["remote-chat", "vader"]
    assert load_settings(models_file=path).models == models


def test_models_file_toml(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text('[[models]]\nid = "v"\ntask = "sentiment"\nbackend = "vader"\n')
    assert read_models_file(path)[0].id == "v"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("models: [{id: a, task: embedding, backend: vader}]", "cannot serve task 'embedding'"),
        ("models: [{id: a, task: text-generation, backend: openai}]", "needs options.base_url"),
        ("models: [{id: a, task: text-generation, backend: transformers}]", "needs a source"),
        (
            "models: [{id: a, task: sentiment, backend: vader}, {id: a, task: sentiment, backend: vader}]",
            "unique",
        ),
        ("models: {}", "top-level 'models' list"),
        ("models: [", "not valid"),
    ],
)
def test_bad_models_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(models_file=path)


def test_missing_models_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(models_file=tmp_path / "nope.yaml")


def test_model_ids_are_checked() -> None:
    with pytest.raises(ValueError, match="id"):
        ModelSpec(id="bad id with spaces", task="sentiment", backend="vader")


def test_a_short_secret_key_is_refused_and_an_empty_one_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMAPI_SECRET_KEY", "too-short")
    with pytest.raises(ConfigError, match="secret_key: the secret key must be at least 32 characters"):
        load_settings()
    monkeypatch.setenv("LLMAPI_SECRET_KEY", "")
    monkeypatch.setenv("LLMAPI_SECRET_KEY_PREVIOUS", "")
    settings = load_settings()
    assert (settings.secret_key, settings.secret_key_previous, settings.secret_key_file) == (None, None, None)
    monkeypatch.setenv("LLMAPI_SECRET_KEY", "k" * 32)
    assert "k" * 32 not in repr(load_settings())


@pytest.mark.parametrize(
    ("value", "origins"),
    [
        ('["https://a.example", "http://localhost:5173"]', ["https://a.example", "http://localhost:5173"]),
        ("https://a.example, http://localhost:5173", ["https://a.example", "http://localhost:5173"]),
        ("https://a.example", ["https://a.example"]),
        ("*", ["*"]),
        ("", []),
    ],
)
def test_cors_origins_are_a_json_list_or_comma_separated(
    monkeypatch: pytest.MonkeyPatch, value: str, origins: list[str]
) -> None:
    monkeypatch.setenv("LLMAPI_CORS_ORIGINS", value)
    assert Settings().cors_origins == origins


def test_cors_origins_off_by_default_and_refused_with_a_path() -> None:
    assert Settings().cors_origins == []
    with pytest.raises(ValueError, match="no path or trailing slash"):
        Settings(cors_origins=["https://a.example/"])
