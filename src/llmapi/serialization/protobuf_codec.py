"""Protobuf bodies: the messages of proto/llmapi/v1/llmapi.proto, whose field names are the JSON names.

A request decodes as its client sent it: unset fields stay absent, so the server's defaults apply. A response
decodes as the JSON API writes it: every field present, an unset `optional` field as null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from llmapi.serialization.codec import DEFAULT_MAX_ITEMS, CodecError, check_max_items, items_limit_error
from llmapi.serialization.proto import llmapi_pb2

_MESSAGES: Mapping[str, type[Message]] = {
    name: GetMessageClass(descriptor)
    for name, descriptor in llmapi_pb2.DESCRIPTOR.message_types_by_name.items()
}
# MessageToDict writes 64-bit integers as strings and float32 values rounded to their shortest form; the
# JSON API writes the numbers themselves, so these are taken from the message instead.
_EXACT_NUMBERS = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_FLOAT,
        FieldDescriptor.TYPE_DOUBLE,
    }
)


def _message_types() -> list[Descriptor]:
    """Every message type the file's messages can hold, map entries and other files' messages included."""
    found: dict[str, Descriptor] = {}
    todo = list(llmapi_pb2.DESCRIPTOR.message_types_by_name.values())
    while todo:
        descriptor = todo.pop()
        if descriptor.full_name not in found:
            found[descriptor.full_name] = descriptor
            todo.extend(field.message_type for field in descriptor.fields if field.message_type is not None)
    return list(found.values())


# The message types (by full name) that hold a repeated or message field: only their messages need looking
# into when counting items; a repeated field of any other type (ChatMessage, say) is measured by len() alone.
_HOLD_CONTAINERS = frozenset(
    descriptor.full_name
    for descriptor in _message_types()
    if any(field.is_repeated or field.message_type is not None for field in descriptor.fields)
)


class ProtobufCodec:
    media_type = "application/x-protobuf"

    def __init__(self, *, max_items: int = DEFAULT_MAX_ITEMS) -> None:
        self.max_items = check_max_items(max_items)

    def decode(self, body: bytes, *, message: str) -> dict[str, Any]:
        parsed = _message_class(message)()
        # The C parser builds every message of the body in one call that holds the interpreter lock (about
        # 100 ms for two million empty messages); counting them on the wire first stops such a body early.
        _count_on_the_wire(body, llmapi_pb2.DESCRIPTOR.message_types_by_name[message], self.max_items)
        try:
            parsed.ParseFromString(body)
        except DecodeError as exc:
            raise CodecError(f"the body is not a valid Protobuf llmapi.v1.{message}: {exc}") from exc
        # Parsing is C; converting is Python, and slow for millions of items, so count them first.
        _check_items(parsed, self.max_items)
        is_response = not message.endswith("Request")
        data: dict[str, Any] = json_format.MessageToDict(
            parsed, preserving_proto_field_name=True, always_print_fields_with_no_presence=is_response
        )
        _restore_numbers(parsed, data, nulls=is_response)
        return data

    def encode(self, data: Mapping[str, Any], *, message: str) -> bytes:
        built = _message_class(message)()
        try:
            _fill(built, data)
        except (TypeError, ValueError, AttributeError) as exc:
            raise CodecError(f"the data has no Protobuf llmapi.v1.{message} form: {exc}") from exc
        return built.SerializeToString()


def _message_class(name: str) -> type[Message]:
    try:
        return _MESSAGES[name]
    except KeyError:
        raise KeyError(
            f"no Protobuf message llmapi.v1.{name}; define it in proto/llmapi/v1/llmapi.proto and run "
            "`make proto`"
        ) from None


def _count_on_the_wire(body: bytes, descriptor: Descriptor, max_items: int) -> None:
    """Raise CodecError as soon as a repeated field of `descriptor` (or of a message inside it that holds
    containers) has occurred more than `max_items` times in `body`. Walks the wire format without building
    anything; where the bytes are not valid Protobuf it stops, and the parser says what is wrong."""
    stack = [(descriptor, 0, len(body))]
    while stack:
        kind, position, end = stack.pop()
        seen: dict[int, int] = {}
        fields = kind.fields_by_number
        while position < end:
            key, position = _varint(body, position)
            number, wire_type = key >> 3, key & 7
            field = fields.get(number)
            if wire_type == 0:
                _, position = _varint(body, position)
            elif wire_type == 1 or wire_type == 5:
                position += 8 if wire_type == 1 else 4
            elif wire_type == 2:
                length, position = _varint(body, position)
                inner = field.message_type if field is not None else None
                if inner is not None and inner.full_name in _HOLD_CONTAINERS:
                    stack.append((inner, position, min(position + length, end)))
                position += length
            else:
                return
            if field is not None and field.is_repeated:
                seen[number] = count = seen.get(number, 0) + 1
                if count > max_items:
                    raise items_limit_error(max_items, field.name)


def _varint(body: bytes, position: int) -> tuple[int, int]:
    """The varint at `position` and the position after it (past the end on truncated input)."""
    value = shift = 0
    while position < len(body) and shift < 64:
        byte = body[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
    return value, len(body) + 1


def _check_items(message: Message, max_items: int) -> None:
    """Raise CodecError at the first repeated or map field of more than `max_items` items, top-down: a field
    is measured (len() is O(1)) before any of its items is looked into."""
    stack = [message]
    while stack:
        node = stack.pop()
        for field, value in node.ListFields():
            kind = field.message_type
            if not field.is_repeated:
                if kind is not None and kind.full_name in _HOLD_CONTAINERS:
                    stack.append(value)
                continue
            if len(value) > max_items:
                raise items_limit_error(max_items, field.name)
            if kind is not None and kind.GetOptions().map_entry:
                kind = kind.fields_by_name["value"].message_type
                value = value.values()
            if kind is not None and kind.full_name in _HOLD_CONTAINERS:
                stack.extend(value)


def _fill(message: Message, data: Mapping[str, Any]) -> None:
    """Set `message` from its JSON form: None is unset, unknown keys are ignored (as json_format.ParseDict
    does, but repeated scalars go in whole: an embedding's floats are not converted one by one in Python)."""
    fields = message.DESCRIPTOR.fields_by_name
    for name, value in data.items():
        field = fields.get(name)
        if field is None or value is None:
            continue
        target = getattr(message, name)
        kind = field.message_type
        if field.is_repeated and not isinstance(value, list | tuple | Mapping):
            raise TypeError(f"'{name}' must be a list, not {type(value).__name__}")
        if kind is not None and kind.GetOptions().map_entry:
            if kind.fields_by_name["value"].message_type is None:
                target.update(value)
            else:
                for key, item in value.items():
                    _fill(target[key], item)
        elif kind is not None and field.is_repeated:
            for item in value:
                _fill(target.add(), item)
        elif kind is not None:
            target.SetInParent()
            _fill(target, value)
        elif field.is_repeated:
            target.extend(value)
        else:
            setattr(message, name, value)


def _restore_numbers(message: Message, data: dict[str, Any], *, nulls: bool) -> None:
    """Put the message's own 64-bit integers and floats into its MessageToDict form, recursively;
    with `nulls`, add the unset optional scalars as None."""
    for field in message.DESCRIPTOR.fields:
        kind = field.message_type
        if field.name not in data:
            if nulls and field.has_presence and kind is None:
                data[field.name] = None
            continue
        value = getattr(message, field.name)
        if kind is None:
            if field.type in _EXACT_NUMBERS:
                data[field.name] = list(value) if field.is_repeated else value
        elif kind.GetOptions().map_entry:
            if kind.fields_by_name["value"].type in _EXACT_NUMBERS:
                data[field.name] = dict(value)
        elif field.is_repeated:
            for item, item_data in zip(value, data[field.name], strict=True):
                _restore_numbers(item, item_data, nulls=nulls)
        else:
            _restore_numbers(value, data[field.name], nulls=nulls)
