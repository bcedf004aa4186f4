from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from llmapi.serialization.codec import CodecError
from llmapi.serialization.json_codec import JSONCodec, nesting_depth

_SPECIAL = st.sampled_from(["<", ">", "&", '"', "'", "\\", "\n", "\t", "é", "語", "😀", "\x00"])
TEXT = st.text(alphabet=st.one_of(st.characters(exclude_categories=("Cs",)), _SPECIAL), max_size=12)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
OBJECTS = st.dictionaries(TEXT, VALUES, max_size=5)


def nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep: {"a": {"a": ... {"a": 1}}}."""
    value: dict[str, Any] = {"a": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@settings(max_examples=100)
@given(OBJECTS)
def test_round_trip(data: dict[str, Any]) -> None:
    assume(nesting_depth(data) <= 32)
    codec = JSONCodec()
    body = codec.encode(data, message="ChatCompletion")
    assert body == orjson.dumps(data)
    assert codec.decode(body, message="ChatCompletionRequest") == data


def test_media_type() -> None:
    assert JSONCodec.media_type == "application/json"


@pytest.mark.parametrize("body", [b"[]", b'[{"model": "m"}]', b'"text"', b"1", b"null"])
def test_the_top_must_be_an_object(body: bytes) -> None:
    with pytest.raises(CodecError, match="the body must be a JSON object"):
        JSONCodec().decode(body, message="x")


@pytest.mark.parametrize("body", [b'{"model": "\xff"}', b"\xfe\xff{}", b'{"a": "\xc3"}'])
def test_invalid_utf8_is_named(body: bytes) -> None:
    with pytest.raises(CodecError, match="not valid UTF-8"):
        JSONCodec().decode(body, message="x")


@pytest.mark.parametrize("body", [b"", b"{", b'{"a": }', b"{'a': 1}", b'{"a": 1,}', b"nonsense"])
def test_malformed_json(body: bytes) -> None:
    with pytest.raises(CodecError, match="not valid JSON"):
        JSONCodec().decode(body, message="x")


def test_nesting_up_to_the_limit_is_accepted() -> None:
    codec = JSONCodec()
    assert codec.decode(orjson.dumps(nested(32)), message="x") == nested(32)


@pytest.mark.parametrize("depth", [33, 100])
def test_deeper_nesting_is_refused(depth: int) -> None:
    with pytest.raises(CodecError, match="limit of 32 levels"):
        JSONCodec().decode(orjson.dumps(nested(depth)), message="x")


def test_lists_count_as_levels() -> None:
    body = b'{"a": ' + b"[" * 99 + b"]" * 99 + b"}"
    with pytest.raises(CodecError, match="limit of 32 levels"):
        JSONCodec().decode(body, message="x")


def test_orjson_own_depth_limit_is_a_codec_error() -> None:
    body = b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(CodecError, match="limit of 8 levels"):
        JSONCodec(max_depth=8).decode(body, message="x")


def test_max_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        JSONCodec(max_depth=0)


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        (1, 0),
        ("text", 0),
        (None, 0),
        ({}, 1),
        ([], 1),
        ({"a": 1, "b": "x"}, 1),
        ([[]], 2),
        ({"a": [{"b": 1}], "c": {}}, 3),
        ({"a": (1, [2])}, 1),
    ],
)
def test_nesting_depth(value: object, depth: int) -> None:
    assert nesting_depth(value) == depth


def test_nesting_depth_does_not_recurse() -> None:
    value: list[Any] = []
    for _ in range(100_000):
        value = [value]
    assert nesting_depth(value) == 100_001
