"""The few TL constructs Telethon's generated classes do not serialize for a server.

Everything else is built and parsed with Telethon's own classes (``bytes(obj)`` and
``BinaryReader(...).tgread_object()``), so the wire format always matches the installed Telethon.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterable
from typing import Any

from telethon.tl import types
from telethon.tl.tlobject import TLObject

VECTOR = 0x1CB5C415
BOOL_TRUE = 0x997275B5
BOOL_FALSE = 0xBC799737
RPC_RESULT = 0xF35C6D01
MSG_CONTAINER = 0x73F1F8DC
GZIP_PACKED = 0x3072CFA1

# Answers bigger than this go out gzip-packed, as Telegram does for large results.
GZIP_THRESHOLD = 2048


class IntVector(list):
    """A ``Vector<int>`` answer (serialized as raw 32-bit ints)."""


class LongVector(list):
    """A ``Vector<long>`` answer (serialized as raw 64-bit ints)."""


def tl_bool(value: bool) -> bytes:
    return struct.pack("<I", BOOL_TRUE if value else BOOL_FALSE)


def vector(items: Iterable[Any]) -> bytes:
    items = list(items)
    return struct.pack("<Ii", VECTOR, len(items)) + b"".join(serialize(x) for x in items)


def serialize(value: Any) -> bytes:
    """Serialize a handler's answer: a TL object, bool, raw bytes or a (typed) list."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return tl_bool(value)
    if isinstance(value, TLObject):
        return bytes(value)
    if isinstance(value, IntVector):
        return struct.pack("<Ii", VECTOR, len(value)) + b"".join(struct.pack("<i", v) for v in value)
    if isinstance(value, LongVector):
        return struct.pack("<Ii", VECTOR, len(value)) + b"".join(struct.pack("<q", v) for v in value)
    if isinstance(value, list | tuple):
        return vector(value)
    raise TypeError(f"cannot serialize answer of type {type(value).__name__}")


def gzip_packed(data: bytes) -> bytes:
    return struct.pack("<I", GZIP_PACKED) + TLObject.serialize_bytes(gzip.compress(data, compresslevel=6))


def rpc_result(req_msg_id: int, body: bytes) -> bytes:
    if len(body) > GZIP_THRESHOLD:
        packed = gzip_packed(body)
        if len(packed) < len(body):
            body = packed
    return struct.pack("<Iq", RPC_RESULT, req_msg_id) + body


def rpc_error(req_msg_id: int, code: int, message: str) -> bytes:
    return struct.pack("<Iq", RPC_RESULT, req_msg_id) + bytes(types.RpcError(code, message))


def container(messages: list[tuple[int, int, bytes]]) -> bytes:
    """``msg_container`` of (msg_id, seq_no, body) triples."""
    parts = [struct.pack("<Ii", MSG_CONTAINER, len(messages))]
    for msg_id, seq_no, body in messages:
        parts.append(struct.pack("<qii", msg_id, seq_no, len(body)))
        parts.append(body)
    return b"".join(parts)


def split_container(body: bytes) -> list[tuple[int, int, bytes]]:
    """Inner (msg_id, seq_no, body) of a client ``msg_container`` (constructor already checked)."""
    (count,) = struct.unpack_from("<i", body, 4)
    if count < 0 or count > 1024:
        raise ValueError(f"bad container size {count}")
    out = []
    pos = 8
    for _ in range(count):
        msg_id, seq_no, length = struct.unpack_from("<qii", body, pos)
        pos += 16
        if length < 0 or pos + length > len(body):
            raise ValueError("container message overruns its container")
        out.append((msg_id, seq_no, body[pos : pos + length]))
        pos += length
    return out


def unpack_gzip(body: bytes) -> bytes:
    """Payload of a ``gzip_packed`` object (constructor already checked)."""
    from telethon.extensions import BinaryReader

    with BinaryReader(body[4:]) as reader:
        return gzip.decompress(reader.tgread_bytes())


def constructor_of(body: bytes) -> int:
    if len(body) < 4:
        raise ValueError("message body shorter than a constructor id")
    return struct.unpack_from("<I", body)[0]
