"""Schemathesis fuzzes every `/v1` operation of the app's own OpenAPI document against a real `llmapi serve`:
no input may get a server error, and answers must keep to what the document says (status codes, media types,
schemas, headers). Bodies go out as JSON, XML and Protobuf; answers are asked for in every documented format.

Deterministic: a fixed seed per operation and no example database, so CI replays the same requests.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from llmapi.protocol.common import MAX_CHOICES as CHOICES_LIMIT
from llmapi.protocol.common import MAX_TOKENS_LIMIT
from llmapi.serialization.codec import CodecError
from llmapi.serialization.messages import protobuf_messages
from llmapi.serialization.negotiation import JSON, PROTOBUF, XML
from llmapi.serialization.protobuf_codec import ProtobufCodec
from llmapi.serialization.xml_codec import XMLCodec
from tests.servers import ADMIN_HEADERS, RunningServer, llmapi_server

SEED = 20_240_601
EXAMPLES_PER_OPERATION = 200
# The server's alias for Protobuf; the fuzzer sends random bytes under it (the documented binary schema).
RAW_PROTOBUF = "application/protobuf"
# Generation on the CPU model is the cost of this test: requests may ask for up to 131,072 tokens and
# 16 choices; here they get at most these (the bounds themselves are tested in
# tests/api/test_hostile_input.py).
MAX_TOKENS = 8
MAX_CHOICES = 2
_TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")
# Which kind of served model each inference operation takes.
_MODEL_TASK = {
    "/v1/chat/completions": "text-generation",
    "/v1/completions": "text-generation",
    "/v1/generate/text": "text-generation",
    "/v1/embeddings": "embedding",
    "/v1/analyze/sentiment": "sentiment",
}


# ---- serializers: the server's own XML and Protobuf forms -----------------------------------------------


@schemathesis.serializer(XML, "text/xml")
def _xml(ctx: schemathesis.SerializationContext, value: Any) -> bytes | None:
    """The server's XML mapping (root `<request>`, lists as `<item>`), not the OpenAPI `xml` object's."""
    if value is None:
        return None
    fields = value if isinstance(value, Mapping) else {"value": value}
    document = XMLCodec().encode(fields, message="").decode()
    if not isinstance(value, Mapping):  # a non-object body: the value itself under <request>
        document = document.replace("<value>", "", 1).removesuffix("</value></response>") + "</response>"
    return document.replace("<response>", "<request>", 1).replace("</response>", "</request>").encode()


@schemathesis.serializer(PROTOBUF)
def _protobuf(ctx: schemathesis.SerializationContext, value: Any) -> bytes | None:
    """The generated JSON-shaped body as its Protobuf message. A body Protobuf cannot carry (token-id
    prompts, wrong types) goes out as its JSON text, which the server must refuse as unreadable."""
    if value is None:
        return None
    message = protobuf_messages(ctx.case.method.upper(), ctx.case.path).request
    if message is not None and isinstance(value, Mapping):
        try:
            return ProtobufCodec().encode(_as_proto_lists(value), message=message)
        except (CodecError, TypeError, ValueError):
            pass
    return json.dumps(value).encode()


schemathesis.serializer.alias(RAW_PROTOBUF, "application/octet-stream")


def _as_proto_lists(body: Mapping[str, Any]) -> dict[str, Any]:
    """One string where Protobuf has a repeated field (prompt, input, stop) is a list of one."""
    return {
        key: [value] if key in ("prompt", "input", "stop") and isinstance(value, str) else value
        for key, value in body.items()
    }


# ---- the server and its document ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Its own server: the fuzzer creates and revokes keys and clients. Requests that leave max_tokens out
    get 8 tokens, not the default 256."""
    with llmapi_server(
        tmp_path_factory.mktemp("fuzz"), env={"LLMAPI_DEFAULT_MAX_TOKENS": str(MAX_TOKENS)}
    ) as running:
        yield running


@pytest.fixture(scope="module")
def served_models(fuzz_server: RunningServer) -> dict[str, str]:
    """task -> the id of a served model of that task."""
    listing = httpx.get(f"{fuzz_server.api_url}/models", headers=ADMIN_HEADERS, timeout=30).json()
    return {card["task"]: card["id"] for card in reversed(listing["data"])}


@pytest.fixture(scope="module")
def api_schema(fuzz_server: RunningServer) -> schemathesis.BaseSchema:
    document = httpx.get(f"{fuzz_server.base_url}/openapi.json", timeout=30).json()
    config = schemathesis.Config(seed=SEED)
    schema = schemathesis.openapi.from_dict(_with_structured_protobuf(document), config=config)
    schema.config.update(base_url=fuzz_server.base_url)
    schema.config.generation.update(database="none")
    return schema


def _with_structured_protobuf(document: dict[str, Any]) -> dict[str, Any]:
    """The document lists Protobuf request bodies as opaque binary. Here they take the JSON body's schema,
    encoded by the Protobuf serializer above, and random bytes go out under the alias RAW_PROTOBUF."""
    document = copy.deepcopy(document)
    for operations in document["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            if PROTOBUF in content:
                content[RAW_PROTOBUF] = content[PROTOBUF]
                content[PROTOBUF] = {"schema": content[JSON]["schema"]}
    return document


# ---- the test -------------------------------------------------------------------------------------------

schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex="^/v1/")


@schema.parametrize()
@schema.given(data=st.data())
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_gets_a_server_error(
    case: schemathesis.Case, data: st.DataObject, served_models: dict[str, str]
) -> None:
    _affordable(case)
    _with_a_served_model(case, data, served_models)
    headers = {"Accept": data.draw(st.sampled_from(_documented_answers(case)), label="Accept")}
    if case.path != "/v1/oauth/token":  # it authenticates the client in its own Authorization header
        headers.update(ADMIN_HEADERS)
    import os, json as _json  # EXPLORE (temporary)
    if os.environ.get("FUZZ_EXPLORE"):
        response = case.call(headers=headers, timeout=120)
        with open(os.environ["FUZZ_EXPLORE"], "a") as out:
            out.write(_json.dumps({"label": case.operation.label, "status": response.status_code,
                "media": case.media_type, "phase": str(case.meta.phase.name) if case.meta else None, "mode": str(case.meta.generation.mode) if case.meta else None, "curl": case.as_curl_command(headers=headers),
                "body": repr(response.content[:300])}) + "\n")
        return
    case.call_and_validate(headers=headers, timeout=120)


def _affordable(case: schemathesis.Case) -> None:
    if not isinstance(case.body, dict):
        return
    # Only values within the bounds shrink: an out-of-bounds one is the point of a negative case.
    for field, cap, limit in (
        *((f, MAX_TOKENS, MAX_TOKENS_LIMIT) for f in _TOKEN_FIELDS),
        ("n", MAX_CHOICES, CHOICES_LIMIT),
    ):
        value = case.body.get(field)
        if _is_int(value) and cap < value <= limit:
            case.body[field] = cap


def _with_a_served_model(case: schemathesis.Case, data: st.DataObject, served: dict[str, str]) -> None:
    """Mostly a model the server has (a random name is a quick 404, which a quarter of requests still get)."""
    task = _MODEL_TASK.get(case.path)
    if task is None or not isinstance(case.body, dict) or not isinstance(case.body.get("model"), str):
        return
    if data.draw(st.integers(0, 3), label="served model") > 0:
        case.body["model"] = served[task]


def _documented_answers(case: schemathesis.Case) -> list[str]:
    ok = next(
        (
            response
            for status, response in case.operation.definition.raw["responses"].items()
            if status < "300"
        ),
        {},
    )
    return sorted(ok.get("content", {})) or [JSON]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@pytest.fixture(autouse=True)
def _node_id_shim(request: pytest.FixtureRequest) -> None:
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
