from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmapi.protocol.chat import ChatCompletionRequest
from llmapi.serialization.codec import DEFAULT_MAX_ITEMS, CodecError
from llmapi.serialization.xml_codec import XMLCodec
from tests.serialization.nesting import nesting_depth

# XML 1.0 cannot carry these; the codec replaces them (tested on its own below).
_NOT_XML = "".join(chr(c) for c in [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF])
_SPECIAL = st.sampled_from(["<", ">", "&", '"', "'", "]]>", "\r", "\r\n", "\n", "\t", " ", "é", "語", "😀"])
TEXT = st.lists(
    st.one_of(st.characters(exclude_categories=("Cs",), exclude_characters=_NOT_XML), _SPECIAL), max_size=12
).map("".join)
KEYS = st.one_of(TEXT, st.sampled_from(["model", "max_tokens", "item", "entry", "xml", "a.b-c_d", "1abc"]))
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)
OBJECTS = st.dictionaries(KEYS, VALUES, max_size=5)

README_REQUEST = (
    b"<request><model>m</model><messages><item><role>user</role><content>hi</content></item></messages>"
    b"<max_tokens>5</max_tokens></request>"
)


def as_xml_reads(value: Any) -> Any:
    """What decoding the encoded `value` gives, by the mapping: leaves as text, empty containers as ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return [as_xml_reads(item) for item in value] or ""
    if isinstance(value, dict):
        return {key: as_xml_reads(item) for key, item in value.items() if item is not None} or ""
    return value


def nested(depth: int) -> bytes:
    """A request body whose decoded dict is `depth` levels deep."""
    return b"<request>" + b"<a>" * depth + b"1" + b"</a>" * depth + b"</request>"


def decode(body: bytes, codec: XMLCodec | None = None) -> dict[str, Any]:
    return (codec or XMLCodec()).decode(body, message="ChatCompletionRequest")


@settings(max_examples=100)
@given(OBJECTS)
def test_round_trip(data: dict[str, Any]) -> None:
    expected = {key: as_xml_reads(value) for key, value in data.items() if value is not None}
    depth = max(1, nesting_depth(expected))
    body = XMLCodec().encode(data, message="ChatCompletion")
    assert XMLCodec(max_depth=depth).decode(body, message="x", root="response") == expected
    if depth > 1:
        with pytest.raises(CodecError, match="deeper than the limit"):
            XMLCodec(max_depth=depth - 1).decode(body, message="x", root="response")


def test_the_readme_request() -> None:
    data = decode(README_REQUEST)
    assert data == {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "5"}
    request = ChatCompletionRequest.model_validate(data)
    assert request.max_tokens == 5
    assert request.messages[0].content == "hi"


def test_encode_output() -> None:
    body = XMLCodec().encode(
        {"id": "x", "n": None, "ok": True, "scores": {"1 star": 0.5, "item": 2}, "text": "é<"}, message="x"
    )
    assert (
        body
        == (
            '<?xml version="1.0" encoding="UTF-8"?><response><id>x</id><ok>true</ok><scores>'
            '<entry key="1 star">0.5</entry><entry key="item">2</entry></scores><text>é&lt;</text></response>'
        ).encode()
    )


def test_characters_xml_cannot_carry_are_replaced() -> None:
    codec = XMLCodec()
    body = codec.encode({"text": "a\x00b\x08c\x1f\ufffe\ud800", _NOT_XML[:3]: "v"}, message="x")
    assert codec.decode(body, message="x", root="response") == {
        "text": "a\ufffdb\ufffdc\ufffd\ufffd\ufffd",
        "\ufffd\ufffd\ufffd": "v",
    }


def test_non_finite_floats_are_left_out_like_json_null() -> None:
    body = XMLCodec().encode({"a": float("nan"), "b": [float("inf"), 1.5]}, message="x")
    assert XMLCodec().decode(body, message="x", root="response") == {"b": ["", "1.5"]}


def test_values_that_are_not_json_shaped_are_refused() -> None:
    with pytest.raises(TypeError, match="not JSON-shaped"):
        XMLCodec().encode({"a": object()}, message="x")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<request/>", {}),
        (b'<?xml version="1.0" encoding="UTF-8"?>\n<request>\n</request>', {}),
        (b"<request>\n  <model> m </model>\n  <stop>\n    <item>a</item>\n  </stop>\n</request>",
         {"model": " m ", "stop": ["a"]}),
        (b"<request><a></a><b/></request>", {"a": "", "b": ""}),
        (b"<request><a><![CDATA[<x>&]]></a><!-- note --><?pi x?></request>", {"a": "<x>&"}),
        (b"<request><a>&lt;&amp;&#233;&#x1F600;</a></request>", {"a": "<&é😀"}),
        (b'<request><entry key="model">m</entry><entry key="1 2">x</entry></request>',
         {"model": "m", "1 2": "x"}),
        (b"<request><a><item/><item><item>1</item></item></a></request>", {"a": ["", ["1"]]}),
        ('<?xml version="1.0" encoding="ISO-8859-1"?><request><a>é</a></request>'.encode("latin-1"),
         {"a": "é"}),
    ],
)  # fmt: skip
def test_accepted_shapes(body: bytes, expected: dict[str, Any]) -> None:
    assert decode(body) == expected


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<request><model>&lol9;</model></request>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE request [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<request><model>&xxe;</model></request>"""
EXTERNAL_DTD = (
    b'<!DOCTYPE request SYSTEM "http://example.com/request.dtd"><request><model>m</model></request>'
)
INTERNAL_DTD = b"<!DOCTYPE request [<!ELEMENT request ANY>]><request/>"


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD, INTERNAL_DTD])
def test_dtds_and_entities_are_refused(body: bytes) -> None:
    with pytest.raises(CodecError, match=r"document type declarations \(<!DOCTYPE ...>\) are not allowed"):
        decode(body)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    assert nesting_depth(decode(nested(32))) == 32


@pytest.mark.parametrize("depth", [33, 100, 100_000])
def test_deeper_nesting_is_refused(depth: int) -> None:
    with pytest.raises(CodecError, match="limit of 32 levels"):
        decode(nested(depth))


def test_lists_count_as_levels() -> None:
    body = b"<request><a>" + b"<item>" * 40 + b"</item>" * 40 + b"</a></request>"
    with pytest.raises(CodecError, match="limit of 32 levels"):
        decode(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<request><model>m</request>",
        b"<request><model>m</model>",
        b"<request></request><request></request>",
        b"<request><a>&undefined;</a></request>",
        b"<request><a>&#0;</a></request>",
        b"<request><a>\xff</a></request>",
        b"<request><p:a>1</p:a></request>",
    ],
)
def test_malformed_xml(body: bytes) -> None:
    with pytest.raises(CodecError, match="not well-formed XML"):
        decode(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<response><model>m</model></response>", "root element must be <request>, not <response>"),
        (b"<model>m</model>", "root element must be <request>"),
        (b'<request id="1"><model>m</model></request>', "<request> takes no attributes"),
        (b"<request>text</request>", "must hold fields as child elements"),
        (b"<request><item>a</item></request>", "must hold fields, not <item>"),
        (b'<request><model lang="en">m</model></request>', "fields are child elements, not attributes"),
        (b'<request><a><item n="1">x</item></a></request>', "<item> takes no attributes"),
        (b"<request><entry>m</entry></request>", "exactly one attribute, key"),
        (b'<request><entry key="a" x="1">m</entry></request>', "exactly one attribute, key"),
        (b"<request>text<model>m</model></request>", "<request> mixes text with child elements"),
        (b"<request><model>m</model>tail</request>", "<request> mixes text with child elements"),
        (b"<request><a>x<b>1</b></a></request>", "<a> mixes text with child elements"),
        (b"<request><model>a</model><model>b</model></request>", "'model' appears more than once"),
        (
            b'<request><model>a</model><entry key="model">b</entry></request>',
            "'model' appears more than once",
        ),
        (b"<request><stop><item>a</item><x>b</x></stop></request>", "<stop> mixes <item> elements"),
        (b'<request xmlns="urn:x"><model>m</model></request>', "not <{urn:x}request>"),
        (b'<request><model xmlns="urn:x">m</model></request>', "namespaces are not supported"),
    ],
)
def test_refused_shapes(body: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=re.escape(message)):
        decode(body)


def test_media_type() -> None:
    assert XMLCodec.media_type == "application/xml"


def test_max_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        XMLCodec(max_depth=0)


def items(count: int, item: bytes = b"<item/>") -> bytes:
    """A request body whose `messages` list holds `count` copies of `item`."""
    return b"<request><messages>" + item * count + b"</messages></request>"


def test_the_default_list_bound() -> None:
    assert XMLCodec().max_items == DEFAULT_MAX_ITEMS == 131_072


def test_a_list_of_max_items_is_accepted() -> None:
    assert len(decode(items(DEFAULT_MAX_ITEMS))["messages"]) == DEFAULT_MAX_ITEMS


def test_a_list_of_more_than_max_items_is_refused() -> None:
    with pytest.raises(CodecError, match="<messages> holds more than 131,072 elements; split the request"):
        decode(items(DEFAULT_MAX_ITEMS + 1))


def test_a_small_max_items_is_honoured() -> None:
    codec = XMLCodec(max_items=3)
    assert decode(items(3), codec) == {"messages": ["", "", ""]}
    with pytest.raises(CodecError, match="<messages> holds more than 3 elements"):
        decode(items(4), codec)


@pytest.mark.parametrize(
    ("body", "element"),
    [
        (b"<request><prompt><item><item/><item/><item/><item/></item></prompt></request>", "item"),
        (b"<request><a><b><item/><item/><item/><item/></b></a></request>", "b"),
        (b"<request><a><x/><y/><z/><w/></a></request>", "a"),
        (b"<request><a/><b/><c/><d/></request>", "request"),
    ],
)
def test_every_element_is_bounded(body: bytes, element: str) -> None:
    with pytest.raises(CodecError, match=f"<{element}> holds more than 3 elements"):
        decode(body, XMLCodec(max_items=3))


def test_the_parse_stops_at_the_first_element_over_the_bound() -> None:
    # Refused for the fourth <item>, before the parser reaches what is not XML after it.
    with pytest.raises(CodecError, match="more than 3 elements"):
        decode(b"<request><messages>" + b"<item/>" * 4 + b"<<not xml", XMLCodec(max_items=3))


def test_a_hostile_body_of_millions_of_empty_items_is_refused() -> None:
    with pytest.raises(CodecError, match="<messages> holds more than 131,072 elements"):
        decode(items(4 * 1024 * 1024 // 7))


def test_max_items_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_items"):
        XMLCodec(max_items=0)
