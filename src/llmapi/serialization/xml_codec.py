"""application/xml: the JSON-shaped dict as elements.

The mapping, both ways:

- The root element is `<request>` in request bodies and `<response>` in response bodies; it is always an
  object. The XML declaration is optional on input; output is UTF-8 with a declaration.
- Each field of an object is a child element named with the field's JSON name:
  `<model>m</model>`. A key that is not a plain name - ASCII letter or `_`, then letters, digits, `_`, `-`
  or `.`; not starting with `xml` in any case; not `item` or `entry` - is written as
  `<entry key="the key">...</entry>`. On input either form is accepted for any key.
- A list is a sequence of `<item>` children of its field's element; a nested object is child elements.
- Leaves are text: strings as they are, numbers as their decimal text, booleans as `true`/`false`.
  Decoding returns every leaf as a string (whitespace kept); the same pydantic validation as for JSON then
  parses numbers and booleans.
- On output, fields whose value is None (or a non-finite float, which JSON sends as null) are left out;
  such a list item is an empty `<item></item>`. An empty string, list or object is an empty element,
  which decodes as "".
- Characters XML 1.0 cannot carry (the controls other than tab, newline and carriage return, lone
  surrogates, U+FFFE, U+FFFF) are replaced by U+FFFD on output; input cannot contain them.

On input: an element with child elements is an object, unless all its children are `<item>` (a list); an
element with none is its text ("" when empty). Refused, with a CodecError: attributes (other than `key` on
`<entry>`), text beside child elements (whitespace aside), a field given twice, `<item>` beside named
fields, namespaces, DTDs, entity declarations, external entities, malformed XML, a root other than
`<request>`, nesting deeper than `max_depth` (the `nesting_depth` of the decoded dict, as for JSON), and an
element with more than `max_items` child elements (a list of more items, or an object of more fields); both
are checked while parsing. Comments, processing instructions and CDATA sections are read as XML defines them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden  # type: ignore[import-untyped]
from defusedxml.ElementTree import DefusedXMLParser  # type: ignore[import-untyped]

from llmapi.serialization.codec import DEFAULT_MAX_ITEMS, CodecError, check_max_items
from llmapi.serialization.json_codec import DEFAULT_MAX_DEPTH, depth_limit_error

ITEM = "item"
ENTRY = "entry"
KEY = "key"
_PLAIN_NAME = re.compile(r"(?!(?i:xml))[A-Za-z_][A-Za-z0-9_.-]*")
_NOT_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


class _LimitedBuilder(TreeBuilder):
    """Stops the parse as soon as elements nest deeper than `max_elements`, or one element has more than
    `max_items` children."""

    def __init__(self, max_elements: int, max_depth: int, max_items: int) -> None:
        super().__init__()
        self._max_elements = max_elements
        self._max_depth = max_depth
        self._max_items = max_items
        self._tags: list[str] = []  # of the open elements, outermost first
        self._children = [0]  # of each open element, after the count of roots

    def start(self, tag: Any, attrs: dict[Any, Any], /) -> Element:
        if len(self._tags) >= self._max_elements:
            raise depth_limit_error(self._max_depth)
        self._children[-1] += 1
        if self._children[-1] > self._max_items:
            raise CodecError(
                f"<{self._tags[-1]}> holds more than {self._max_items:,} elements; split the request"
            )
        self._tags.append(tag)
        self._children.append(0)
        return super().start(tag, attrs)

    def end(self, tag: Any, /) -> Element:
        self._tags.pop()
        self._children.pop()
        return super().end(tag)


class XMLCodec:
    media_type = "application/xml"

    def __init__(self, *, max_depth: int = DEFAULT_MAX_DEPTH, max_items: int = DEFAULT_MAX_ITEMS) -> None:
        if max_depth < 1:
            raise ValueError(f"max_depth must be at least 1, got {max_depth}")
        self.max_depth = max_depth
        self.max_items = check_max_items(max_items)

    def decode(self, body: bytes, *, message: str, root: str = "request") -> dict[str, Any]:
        """`root` other than "request" is for clients and tests reading a `<response>`."""
        element = self._parse(body)
        if element.tag != root:
            raise CodecError(f"the root element must be <{root}>, not <{element.tag}>")
        if element.attrib:
            raise CodecError(f"<{root}> takes no attributes")
        children = list(element)
        if not children:
            if element.text and not element.text.isspace():
                raise CodecError(f"<{root}> must hold fields as child elements, not text")
            return {}
        value = _value(element)
        if not isinstance(value, dict):
            raise CodecError(f"<{root}> must hold fields, not <item> elements")
        return value

    def encode(self, data: Mapping[str, Any], *, message: str) -> bytes:
        parts = [_DECLARATION, "<response>"]
        _write_fields(data, parts)
        parts.append("</response>")
        return "".join(parts).encode("utf-8")

    def _parse(self, body: bytes) -> Element:
        # The deepest element is always a leaf, so elements nest one level deeper than the decoded dict.
        builder = _LimitedBuilder(self.max_depth + 1, self.max_depth, self.max_items)
        parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        try:
            parser.feed(body)
            root: Element = parser.close()
        except DTDForbidden:
            raise CodecError("XML document type declarations (<!DOCTYPE ...>) are not allowed") from None
        except EntitiesForbidden:
            raise CodecError("XML entity declarations are not allowed") from None
        except ExternalReferenceForbidden:
            raise CodecError("XML external entity references are not allowed") from None
        except ParseError as exc:
            raise CodecError(f"the body is not well-formed XML: {exc}") from None
        return root


def _value(element: Element) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    if not _blank(element.text) or not all(_blank(child.tail) for child in children):
        raise CodecError(f"<{element.tag}> mixes text with child elements; put the text in its own field")
    if all(child.tag == ITEM for child in children):
        return [_item(child) for child in children]
    fields: dict[str, Any] = {}
    for child in children:
        key = _key(child, parent=element.tag)
        if key in fields:
            raise CodecError(f"the field {key!r} appears more than once in <{element.tag}>")
        fields[key] = _value(child)
    return fields


def _item(element: Element) -> Any:
    if element.attrib:
        raise CodecError("<item> takes no attributes")
    return _value(element)


def _key(element: Element, *, parent: str) -> str:
    tag = element.tag
    if tag == ITEM:
        raise CodecError(f"<{parent}> mixes <item> elements with named fields; make it a list or an object")
    if tag.startswith("{"):
        raise CodecError(f"XML namespaces are not supported (element {tag})")
    if tag == ENTRY:
        if set(element.attrib) != {KEY}:
            raise CodecError('<entry> takes exactly one attribute, key: <entry key="name">')
        return element.attrib[KEY]
    if element.attrib:
        raise CodecError(f"<{tag}> has attributes; fields are child elements, not attributes")
    return tag


def _blank(text: str | None) -> bool:
    return not text or text.isspace()


def _write_fields(fields: Mapping[str, Any], parts: list[str]) -> None:
    for key, value in fields.items():
        if not isinstance(key, str):
            raise TypeError(f"object keys must be strings, got {type(key).__name__}")
        if _is_null(value):
            continue
        if _PLAIN_NAME.fullmatch(key) and key not in (ITEM, ENTRY):
            parts.append(f"<{key}>")
            _write_value(value, parts)
            parts.append(f"</{key}>")
        else:
            parts.append(f'<entry key="{_attribute(key)}">')
            _write_value(value, parts)
            parts.append("</entry>")


def _write_value(value: Any, parts: list[str]) -> None:
    if isinstance(value, str):
        parts.append(_text(value))
    elif isinstance(value, bool):
        parts.append("true" if value else "false")
    elif isinstance(value, int):
        parts.append(str(int(value)))
    elif isinstance(value, float):
        parts.append(repr(float(value)))
    elif isinstance(value, Mapping):
        _write_fields(value, parts)
    elif isinstance(value, list | tuple):
        for item in value:
            parts.append("<item>")
            if not _is_null(item):
                _write_value(item, parts)
            parts.append("</item>")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON-shaped; dump models with mode='json' first")


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _text(value: str) -> str:
    value = _NOT_XML_CHARS.sub("\ufffd", value)
    # A raw carriage return would reach the reader as a newline (XML end-of-line handling).
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _attribute(value: str) -> str:
    # Attribute-value normalization would turn raw tabs and newlines into spaces.
    return _text(value).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")
