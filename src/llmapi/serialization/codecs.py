"""The codec of each format this server speaks."""

from __future__ import annotations

from collections.abc import Mapping

from llmapi.serialization.codec import Codec
from llmapi.serialization.json_codec import JSONCodec
from llmapi.serialization.negotiation import JSON, PROTOBUF, XML
from llmapi.serialization.protobuf_codec import ProtobufCodec
from llmapi.serialization.xml_codec import XMLCodec


def codecs(*, max_depth: int) -> Mapping[str, Codec]:
    return {
        JSON: JSONCodec(max_depth=max_depth),
        XML: XMLCodec(max_depth=max_depth),
        PROTOBUF: ProtobufCodec(),
    }
