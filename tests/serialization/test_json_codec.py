from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from llmapi.serialization.codec import DEFAULT_MAX_ITEMS, CodecError
from llmapi.serialization.json_codec import JSONCodec, check_shape
from tests.serialization.nesting import nesting_depth

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


def items(count: int, item: bytes = b"{}") -> bytes:
    """A request body whose `messages` list holds `count` copies of `item`."""
    return b'{"messages": [' + b",".join([item] * count) + b"]}"


def test_the_default_list_bound() -> None:
    assert JSONCodec().max_items == DEFAULT_MAX_ITEMS == 131_072


def test_a_list_of_max_items_is_accepted() -> None:
    body = b'{"prompt": [' + b",".join([b"1"] * DEFAULT_MAX_ITEMS) + b"]}"
    assert len(JSONCodec().decode(body, message="x")["prompt"]) == DEFAULT_MAX_ITEMS


def test_a_list_of_more_than_max_items_is_refused() -> None:
    body = b'{"prompt": [' + b",".join([b"1"] * (DEFAULT_MAX_ITEMS + 1)) + b"]}"
    refusal = "the field 'prompt' holds more than 131,072 items; split the request"
    with pytest.raises(CodecError, match=refusal):
        JSONCodec().decode(body, message="x")


def test_a_small_max_items_is_honoured() -> None:
    codec = JSONCodec(max_items=3)
    assert codec.decode(items(3), message="x") == {"messages": [{}, {}, {}]}
    with pytest.raises(CodecError, match="the field 'messages' holds more than 3 items"):
        codec.decode(items(4), message="x")


@pytest.mark.parametrize(
    "body",
    [
        b'{"prompt": [[1], [1, 2, 3, 4]]}',
        b'{"a": {"b": [{"c": [1, 2, 3, 4]}]}}',
        b'{"a": [1], "b": [1, 2, 3, 4], "c": [1]}',
    ],
)
def test_lists_at_any_depth_are_bounded(body: bytes) -> None:
    with pytest.raises(CodecError, match="more than 3 items"):
        JSONCodec(max_items=3).decode(body, message="x")


def test_a_nested_list_is_named_by_the_field_that_holds_it() -> None:
    with pytest.raises(CodecError, match="the field 'prompt' holds more than 3 items"):
        JSONCodec(max_items=3).decode(b'{"prompt": [[1, 2, 3, 4]]}', message="x")


def test_a_long_list_is_refused_before_its_items_are_walked() -> None:
    too_deep = orjson.dumps(nested(40))
    with pytest.raises(CodecError, match="more than 3 items"):
        JSONCodec(max_items=3).decode(items(4, too_deep), message="x")
    with pytest.raises(CodecError, match="limit of 32 levels"):
        JSONCodec(max_items=4).decode(items(4, too_deep), message="x")


def test_a_hostile_body_of_millions_of_empty_objects_is_refused() -> None:
    body = items(4 * 1024 * 1024 // 3)
    with pytest.raises(CodecError, match="holds more than 131,072 objects and arrays"):
        JSONCodec().decode(body, message="x")


def test_max_items_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_items"):
        JSONCodec(max_items=0)


@settings(max_examples=100)
@given(VALUES)
def test_check_shape_refuses_what_nesting_depth_counts_too_deep(value: Any) -> None:
    depth = nesting_depth(value)
    for max_depth in range(1, depth + 2):
        if depth > max_depth:
            with pytest.raises(CodecError, match="deeper than the limit"):
                check_shape(value, max_depth=max_depth, max_items=DEFAULT_MAX_ITEMS)
        else:
            check_shape(value, max_depth=max_depth, max_items=DEFAULT_MAX_ITEMS)


# Commas inside a string count toward the upper bound, so this body goes to the pure-Python parser.
MANY_COMMAS = "," * 300_000


@pytest.mark.parametrize(
    "data",
    [
        {"prompt": MANY_COMMAS, "n": 2, "stop": ["a", "b"], "nested": {"x": [1.5, True, None]}},
        {"prompt": MANY_COMMAS, "messages": [{}] * 40_000},
    ],
)
def test_bodies_of_many_values_parse_in_python_to_what_orjson_gives(data: dict[str, Any]) -> None:
    body = orjson.dumps(data)

    assert JSONCodec().decode(body, message="") == orjson.loads(body)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"prompt": "' + MANY_COMMAS.encode() + b'", "x": NaN}', "not valid JSON"),
        (b'{"prompt": "' + MANY_COMMAS.encode() + b'", "x": [1,]}', "not valid JSON"),
        (b'{"prompt": "' + MANY_COMMAS.encode() + b'\xff"}', "not valid UTF-8"),
        (b'{"prompt": "' + MANY_COMMAS.encode() + b'", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "deeper"),
        (b'["' + MANY_COMMAS.encode() + b'"]', "must be a JSON object"),
    ],
)
def test_the_python_parser_refuses_what_orjson_refuses(body: bytes, says: str) -> None:
    with pytest.raises(CodecError, match=says):
        JSONCodec().decode(body, message="")
