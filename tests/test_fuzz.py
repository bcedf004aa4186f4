"""Schemathesis fuzzes every `/v1` operation of the app's own OpenAPI document against a real `llmapi serve`
in the fleet's shape (PostgreSQL, Redis): no input may get a server error or make the server log one, and
answers keep to the document. Bodies go out as JSON, XML and Protobuf; answers are asked for in every
format the operation documents.

Deterministic: a fixed seed for every operation and no example database, so CI sends the same requests.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
import time
import zlib
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import SanitizationConfig

from llmapi.protocol.common import MAX_CHOICES as CHOICES_LIMIT
from llmapi.protocol.common import MAX_TOKENS_LIMIT
from llmapi.serialization.codec import CodecError
from llmapi.serialization.messages import ERROR, protobuf_messages
from llmapi.serialization.negotiation import JSON, PROTOBUF, XML
from llmapi.serialization.protobuf_codec import ProtobufCodec
from llmapi.serialization.xml_codec import XMLCodec
from tests.real_services import SECRET_KEY, own_redis, postgres_schema
from tests.servers import ADMIN_HEADERS, RunningServer, llmapi_server

SEED = 20_240_601
# Per operation, in the fuzzing phase; the examples and coverage phases add their own cases (about 3,000
# in all: boundary values, wrong types, missing fields, undeclared methods).
EXAMPLES_PER_OPERATION = 50
# The server's other name for Protobuf: under it the fuzzer sends random bytes (the documented binary schema).
RAW_PROTOBUF = "application/protobuf"
EVENT_STREAM = "text/event-stream"
# Generation on the CPU model is what this test costs: requests may ask for up to 131,072 tokens and 16
# choices; here they get at most these (the bounds themselves are tested in tests/api/test_hostile_input.py).
MAX_TOKENS = 4
MAX_CHOICES = 2
_LIMITS = {
    "max_tokens": MAX_TOKENS_LIMIT,
    "max_completion_tokens": MAX_TOKENS_LIMIT,
    "max_output_tokens": MAX_TOKENS_LIMIT,
    "n": CHOICES_LIMIT,
}
_CAPS = {
    "max_tokens": MAX_TOKENS,
    "max_completion_tokens": MAX_TOKENS,
    "max_output_tokens": MAX_TOKENS,
    "n": MAX_CHOICES,
}
# The task of the served model each inference operation takes.
_MODEL_TASK = {
    "/v1/chat/completions": "text-generation",
    "/v1/responses": "text-generation",
    "/v1/completions": "text-generation",
    "/v1/generate/text": "text-generation",
    "/v1/embeddings": "embedding",
    "/v1/analyze/sentiment": "sentiment",
}
_STREAMING = frozenset({"/v1/chat/completions", "/v1/responses", "/v1/completions", "/v1/generate/text"})
_TOKEN_PATH = "/v1/oauth/token"
# Appended to a real id now and then: what random text rarely holds (a NUL, a line separator, quoting).
_NEAR_MISSES = ("\x00", "\u2028", "'", "%", " ")
# The usage recorder writes every second; the log is read after it has had the time to.
_USAGE_FLUSH_S = 2.5


# ---- the server's own XML and Protobuf forms; date-times as the server reads them -----------------------


@schemathesis.serializer(XML, "text/xml")
def _xml_body(ctx: schemathesis.SerializationContext, value: Any) -> bytes | None:
    """The server's XML mapping (root `<request>`, list items as `<item>`), not the OpenAPI `xml` object's."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        document = XMLCodec().encode(value, message="").decode()
    else:  # a negative case's non-object body: the value's own elements under the root
        document = XMLCodec().encode({"value": value}, message="").decode()
        document = document.replace("<value>", "", 1).replace("</value></response>", "</response>")
    return document.replace("<response>", "<request>", 1).replace("</response>", "</request>").encode()


@schemathesis.serializer(PROTOBUF)
def _protobuf_body(ctx: schemathesis.SerializationContext, value: Any) -> bytes | None:
    """The generated JSON-shaped body as the operation's Protobuf message. A body Protobuf cannot carry
    (token-id prompts, content parts, out-of-range numbers, wrong types) goes out as its JSON text, which the
    server must refuse as unreadable Protobuf."""
    if value is None:
        return None
    message = protobuf_messages(ctx.case.operation.definition.raw).request
    if message is not None and isinstance(value, Mapping):
        try:
            return ProtobufCodec().encode(_proto_shaped(value), message=message)
        except (CodecError, TypeError, ValueError):
            pass
    return json.dumps(value).encode()


schemathesis.serializer.alias(RAW_PROTOBUF, "application/octet-stream")


@schemathesis.deserializer(PROTOBUF)
def _protobuf_answer(ctx: schemathesis.DeserializationContext, response: schemathesis.Response) -> Any:
    """Protobuf answers decode to the JSON the API writes, so the response schemas check them too."""
    messages = protobuf_messages(ctx.operation.definition.raw)
    message = ERROR if response.status_code >= 400 else messages.response
    return ProtobufCodec().decode(response.content, message=message or ERROR)


def _proto_shaped(body: Mapping[str, Any]) -> dict[str, Any]:
    """Absent rather than null (proto3), and one string where Protobuf repeats (prompt, input, stop) is a
    list of one."""
    return {
        key: [value] if key in ("prompt", "input", "stop") and isinstance(value, str) else value
        for key, value in body.items()
        if value is not None
    }


# RFC 3339 date-times always carry an offset; the server (pydantic) also reads them without one, and a date
# alone. Offsets at the ends of the calendar move the instant past year 1 or 9999 in UTC.
_OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))])
schemathesis.openapi.format(
    "date-time",
    st.one_of(
        st.datetimes(timezones=_OFFSETS)
        .map(datetime.isoformat)
        .map(lambda text: text.replace("+00:00", "Z")),
        st.datetimes().map(datetime.isoformat),
        st.dates().map(date.isoformat),
    ),
)


# ---- the server, its document and the things it holds --------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server of its own: a new PostgreSQL schema and a private Redis, so that what the fuzzer creates
    stays here and no cache entry of another run leaks in. A request without max_tokens gets MAX_TOKENS."""
    directory = tmp_path_factory.mktemp("fuzz")
    with postgres_schema() as database_url, own_redis(directory) as redis:
        env = {
            "LLMAPI_DATABASE_URL": database_url,
            "LLMAPI_REDIS_URL": redis.url,
            "LLMAPI_SECRET_KEY": SECRET_KEY,
            "LLMAPI_DEFAULT_MAX_TOKENS": str(MAX_TOKENS),
        }
        with llmapi_server(directory, env=env) as running:
            yield running


class Known:
    """Real values a random string would never hit: served models, a key, OAuth clients."""

    def __init__(self, server: RunningServer) -> None:
        with httpx.Client(base_url=server.api_url, headers=ADMIN_HEADERS, timeout=30) as http:
            models = http.get("/models").raise_for_status().json()["data"]
            key = http.post("/admin/keys", json={"name": "fuzz"}).raise_for_status().json()
            client = http.post("/admin/clients", json={"name": "fuzz"}).raise_for_status().json()
            # A client of its own for /oauth/token, which the admin operations do not revoke.
            token_client = http.post("/admin/clients", json={"name": "fuzz-token"}).raise_for_status().json()
            text_model = next(card["id"] for card in models if card["task"] == "text-generation")
            stored = http.post(
                "/responses", json={"model": text_model, "input": "hi", "max_output_tokens": 1}
            )
        self.models = {card["task"]: card["id"] for card in reversed(models)}
        self.path_values = {
            "model_id": [card["id"] for card in models],
            "key_id": [key["id"]],
            "client_id": [client["client_id"]],
            "response_id": [stored.raise_for_status().json()["id"]],
        }
        client_id, secret = token_client["client_id"], token_client["client_secret"]
        self.client_auth = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        self.client_form = {"client_id": client_id, "client_secret": secret}


@pytest.fixture(scope="module")
def known(fuzz_server: RunningServer) -> Known:
    return Known(fuzz_server)


@pytest.fixture(scope="module")
def api_schema(fuzz_server: RunningServer) -> schemathesis.BaseSchema:
    document = httpx.get(f"{fuzz_server.base_url}/openapi.json", timeout=30).raise_for_status().json()
    schema = schemathesis.openapi.from_dict(
        _with_structured_protobuf(document), config=schemathesis.Config(seed=SEED)
    )
    schema.config.update(base_url=fuzz_server.base_url)
    schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
    # Reproductions keep every field (by default any whose name holds "token" is hidden, max_tokens too);
    # credentials stay hidden, though they are the test-only ones of tests/servers.py.
    schema.config.output.sanitization = SanitizationConfig(
        keys_to_sanitize=("authorization", "x-api-key", "client_secret"), sensitive_markers=("secret",)
    )
    return schema


def _with_structured_protobuf(document: dict[str, Any]) -> dict[str, Any]:
    """The document lists Protobuf bodies as opaque binary. Here they take the JSON body's schema: requests
    for the serializer above to encode (random bytes go out under RAW_PROTOBUF instead), answers for the
    deserializer above to decode and the schema to check."""
    document = copy.deepcopy(document)
    for operations in document["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            if PROTOBUF in content:
                content[RAW_PROTOBUF] = content[PROTOBUF]
                content[PROTOBUF] = {"schema": content[JSON]["schema"]}
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if PROTOBUF in content:
                    content[PROTOBUF] = {"schema": content[JSON]["schema"]}
    return document


@pytest.fixture(autouse=True)
def _schemathesis_node_id(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32 (`from_fixture`) renames the test node through `_nodeid`, gone in pytest 9.2."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


# ---- checks beside schemathesis' own --------------------------------------------------------------------


def errors_in_the_api_shape(ctx: schemathesis.CheckContext, response: Any, case: schemathesis.Case) -> None:
    """Errors in the API's shape - OpenAI's {"error": {message, type, ...}}, RFC 6749's on /oauth/token - in
    the negotiated format, the statuses the document does not list (405 for an undeclared method) included;
    `response_schema_conformance` checks the documented ones against their schema too."""
    if response.status_code < 400 or case.method.upper() == "HEAD":
        return
    error = _decoded(response)
    if case.path == _TOKEN_PATH and isinstance(error.get("error"), str):
        assert isinstance(error.get("error_description"), str), (
            f"an OAuth error without a description: {error}"
        )
        return
    body = error.get("error")
    assert isinstance(body, dict), f"{response.status_code} without an error object: {error}"
    assert body.get("message") and body.get("type"), f"an error without a message or type: {error}"


def answers_in_the_asked_format(
    ctx: schemathesis.CheckContext, response: Any, case: schemathesis.Case
) -> None:
    """The answer is in the format Accept asked for - but a stream (documented as text/event-stream), and a
    406, which is JSON when Accept allows no format at all."""
    asked = response.request.headers.get("Accept")
    media_type = _media_type(response)
    if media_type == EVENT_STREAM and case.path in _STREAMING and response.status_code == 200:
        return
    if response.status_code >= 500:  # not_a_server_error reports it; a 500 is JSON whatever was asked
        return
    expected = {asked, JSON} if response.status_code == 406 else {asked}
    assert media_type in expected, f"asked for {asked}, got {media_type} ({response.status_code})"


def _media_type(response: Any) -> str:
    values = response.headers.get("content-type") or [""]
    return str(values[0]).split(";", 1)[0].strip()


def _decoded(response: Any) -> dict[str, Any]:
    media_type = _media_type(response)
    if media_type == XML:
        return XMLCodec().decode(response.content, message=ERROR, root="response")
    if media_type == PROTOBUF:
        return ProtobufCodec().decode(response.content, message=ERROR)
    decoded = json.loads(response.content)
    assert isinstance(decoded, dict), f"an error body that is not an object: {decoded!r}"
    return decoded


# Checks left out, and why (status_code_conformance and content_type_conformance are on since the document
# lists every error an operation answers and the streams):
# - positive_data_acceptance: the schema is looser than the server, by design: it cannot say "a served
#   model", "token ids below the vocabulary size", "no control characters", "exactly one of text and
#   texts", "within the context length", so schema-valid requests get 400 and 404.
# - negative_data_rejection: schema-invalid values that arrive valid are accepted, as intended: pydantic's
#   lax mode takes 0/1 for booleans, numbers for date-times, and the XML mapping relies on it (every XML
#   value is text); Protobuf carries each value as the message's own type.
_EXCLUDED = [
    schemathesis.checks.positive_data_acceptance,
    schemathesis.checks.negative_data_rejection,
]
_ADDED = [errors_in_the_api_shape, answers_in_the_asked_format]


# ---- the tests ------------------------------------------------------------------------------------------

schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex="^/v1/")


@pytest.mark.timeout(900)  # every operation runs in this one test; it takes about two minutes
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
def test_no_input_gets_a_server_error(case: schemathesis.Case, known: Known) -> None:
    # This test's own choices come from the case itself: `@schema.given` would turn the coverage phase off.
    chance = random.Random(zlib.crc32(json.dumps(_parts(case), default=_stable, sort_keys=True).encode()))
    _affordable(case)
    _towards_real_things(case, chance, known)
    headers = {"Accept": chance.choice(_documented_answers(case))}
    if case.path == _TOKEN_PATH:  # authenticates the OAuth client, by its own Authorization header or form
        _maybe_a_real_client(case, chance, known)
    else:
        headers.update(ADMIN_HEADERS)
    case.call_and_validate(headers=headers, timeout=120, excluded_checks=_EXCLUDED, additional_checks=_ADDED)


def test_the_server_logged_no_error(fuzz_server: RunningServer) -> None:
    """Runs after the fuzzing: what fails off the request path (the usage recorder, a stream after its
    first byte) answers no request with a 5xx, but logs an error."""
    time.sleep(_USAGE_FLUSH_S)
    blocks = re.split(r"\n(?=\S+ [A-Z]+ )", fuzz_server.log())
    errors = [block for block in blocks if re.match(r"\S+ (ERROR|CRITICAL) ", block)]

    assert not errors, f"{len(errors)} errors logged; the first:\n" + "\n\n".join(errors[:3])


def _parts(case: schemathesis.Case) -> list[Any]:
    return [
        case.method,
        case.path,
        case.path_parameters,
        case.query,
        case.headers,
        case.media_type,
        case.body,
    ]


def _stable(value: Any) -> str:
    """Random bytes by their content; anything else JSON cannot write (the NOT_SET of a case without a
    body) by its type, as its repr holds an address that changes from run to run."""
    return value.hex() if isinstance(value, bytes) else type(value).__name__


def _affordable(case: schemathesis.Case) -> None:
    """Only values within the bounds shrink: an out-of-bounds one is what a negative case is about. The
    server reads 569.0 and "569" as 569 (pydantic's lax mode): those shrink as well, keeping their type."""
    if not isinstance(case.body, dict):
        return
    for field, cap in _CAPS.items():
        value = case.body.get(field)
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not (numeric or (isinstance(value, str) and value.isdecimal())):
            continue
        number = float(value)
        if number.is_integer() and cap < number <= _LIMITS[field]:
            case.body[field] = type(value)(cap)


def _towards_real_things(case: schemathesis.Case, chance: random.Random, known: Known) -> None:
    """Mostly a served model, an existing key or client; the rest of the requests keep the random names.
    A schema-valid sentiment request gets the one of `text` and `texts` it must have (the schema cannot
    say so). Nothing here turns an invalid value valid."""
    task = _MODEL_TASK.get(case.path)
    body = case.body
    model = body.get("model") if isinstance(body, dict) else None
    if task is not None and isinstance(model, str) and model and chance.random() < 0.75:
        body["model"] = known.models[task]
    for name, values in known.path_values.items():
        if isinstance((case.path_parameters or {}).get(name), str) and chance.random() < 0.5:
            case.path_parameters[name] = _near(chance.choice(values), chance)
    positive = case.meta is None or case.meta.generation.mode == schemathesis.GenerationMode.POSITIVE
    if case.path == "/v1/analyze/sentiment" and isinstance(body, dict) and positive:
        if {"text", "texts"} <= body.keys():
            del body[chance.choice(["text", "texts"])]
        elif not {"text", "texts"} & body.keys():
            body["text"] = chance.choice(["I love it", "awful", "x" * 2000])


def _maybe_a_real_client(case: schemathesis.Case, chance: random.Random, known: Known) -> None:
    """Two thirds of token requests come from the real client (Basic or form), with the generated scope."""
    way = chance.choice(["as generated", "basic", "form"])
    if way == "as generated":
        return
    body = case.body if isinstance(case.body, dict) else {}
    body.setdefault("grant_type", "client_credentials")
    if way == "basic":
        case.headers = {**(case.headers or {}), "authorization": known.client_auth}
    else:
        body.update(known.client_form, client_id=_near(known.client_form["client_id"], chance))
    case.body = body


def _near(value: str, chance: random.Random) -> str:
    """Mostly the value itself; now and then a near miss, as a careless or hostile client sends it."""
    return value if chance.random() < 0.8 else value + chance.choice(_NEAR_MISSES)


def _documented_answers(case: schemathesis.Case) -> list[str]:
    responses = case.operation.definition.raw["responses"]
    ok = next((response for status, response in responses.items() if status.startswith("2")), {})
    return sorted(ok.get("content", {}).keys() - {EVENT_STREAM}) or [JSON]
