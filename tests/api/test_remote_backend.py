"""A second real llmapi process serves models from the first over HTTP: the remote backend end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from tests.servers import ADMIN_KEY, RunningServer, free_port, llmapi_server


def _models_file(path: Path, upstream: str) -> Path:
    path.write_text(
        "models:\n"
        "  - id: proxied-gpt2\n"
        "    task: text-generation\n"
        "    backend: openai\n"
        "    source: gpt2-124m-random\n"
        f"    options: {{base_url: '{upstream}', api_key: '{ADMIN_KEY}', timeout: 60}}\n"
        "  - id: proxied-minilm\n"
        "    task: embedding\n"
        "    backend: openai\n"
        "    source: all-MiniLM-L6-v2\n"
        f"    options: {{base_url: '{upstream}', api_key: '{ADMIN_KEY}'}}\n"
        "  - id: nobody-home\n"
        "    task: text-generation\n"
        "    backend: openai\n"
        f"    options: {{base_url: 'http://127.0.0.1:{free_port()}/v1', max_retries: 0}}\n"
    )
    return path


@pytest.fixture(scope="module")
def gateway(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp("gateway")
    with llmapi_server(
        directory, models_file=_models_file(directory / "models.yaml", server.api_url)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(gateway: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=ADMIN_KEY, max_retries=0, timeout=120)


def test_chat_through_the_gateway_equals_the_upstream(proxy: openai.OpenAI, client: openai.OpenAI) -> None:
    messages: list[dict[str, str]] = [{"role": "user", "content": "Hello there"}]
    via_gateway = proxy.chat.completions.create(
        model="proxied-gpt2",
        messages=messages,  # type: ignore[arg-type]
        max_tokens=8,
        temperature=0,
    )
    direct = client.chat.completions.create(
        model="gpt2-124m-random",
        messages=messages,  # type: ignore[arg-type]
        max_tokens=8,
        temperature=0,
    )
    assert via_gateway.model == "proxied-gpt2"
    assert via_gateway.choices[0].message.content == direct.choices[0].message.content
    assert via_gateway.usage == direct.usage


def test_stream_passes_through(proxy: openai.OpenAI, client: openai.OpenAI) -> None:
    chunks = list(
        proxy.completions.create(
            model="proxied-gpt2", prompt="for i in", max_tokens=8, temperature=0, stream=True
        )
    )
    direct = client.completions.create(
        model="gpt2-124m-random", prompt="for i in", max_tokens=8, temperature=0
    )
    assert "".join(c.choices[0].text for c in chunks) == direct.choices[0].text
    assert len(chunks) > 2


def test_embeddings_through_the_gateway(proxy: openai.OpenAI, client: openai.OpenAI) -> None:
    via = proxy.embeddings.create(model="proxied-minilm", input=["a cat"], encoding_format="float")
    direct = client.embeddings.create(model="all-MiniLM-L6-v2", input=["a cat"], encoding_format="float")
    assert via.data[0].embedding == pytest.approx(direct.data[0].embedding, abs=1e-6)


def test_upstream_errors_keep_their_meaning(proxy: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.completions.create(model="proxied-gpt2", prompt=[1] * 2000, max_tokens=2)
    assert caught.value.code == "context_length_exceeded"


def test_an_unreachable_upstream_is_a_clear_502(proxy: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.chat.completions.create(model="nobody-home", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502
    assert "nobody-home" in caught.value.message
