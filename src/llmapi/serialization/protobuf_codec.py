"""Protobuf bodies: the messages of proto/llmapi/v1/llmapi.proto, whose field names are the JSON names.

A request decodes as its client sent it: unset fields stay absent, so the server's defaults apply. A response
decodes as the JSON API writes it: every field present, an unset `optional` field as null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from llmapi.serialization.codec import CodecError
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


def has_message(name: str) -> bool:
    return name in _MESSAGES


class ProtobufCodec:
    media_type = "application/x-protobuf"

    def decode(self, body: bytes, *, message: str) -> dict[str, Any]:
        parsed = _message_class(message)()
        try:
            parsed.ParseFromString(body)
        except DecodeError as exc:
            raise CodecError(f"the body is not a valid Protobuf llmapi.v1.{message}: {exc}") from exc
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
