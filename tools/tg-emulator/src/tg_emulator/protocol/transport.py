"""Telegram's TcpFull transport: length, sequence number, payload, CRC32."""

from __future__ import annotations

import asyncio
import struct
from zlib import crc32

MAX_PACKET = 2 * 1024 * 1024


class TransportError(Exception):
    """The peer sent something that is not a valid TcpFull packet."""


class FullTransport:
    """Reads and writes TcpFull packets on one stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._recv_seq = 0
        self._send_seq = 0

    async def read_packet(self) -> bytes:
        head = await self.reader.readexactly(8)
        length, seq = struct.unpack("<ii", head)
        if length < 12 or length > MAX_PACKET:
            raise TransportError(f"bad TcpFull packet length {length}")
        rest = await self.reader.readexactly(length - 8)
        body, (crc,) = rest[:-4], struct.unpack("<I", rest[-4:])
        if crc32(head + body) != crc:
            raise TransportError("TcpFull CRC mismatch")
        if seq != self._recv_seq:
            raise TransportError(f"TcpFull sequence {seq}, expected {self._recv_seq}")
        self._recv_seq += 1
        return body

    def encode(self, payload: bytes) -> bytes:
        data = struct.pack("<ii", len(payload) + 12, self._send_seq) + payload
        self._send_seq += 1
        return data + struct.pack("<I", crc32(data))

    def write_packet(self, payload: bytes) -> None:
        self.writer.write(self.encode(payload))

    def write_transport_error(self, code: int) -> None:
        """A bare 4-byte negative code, e.g. -404 for an unknown auth key."""
        self.write_packet(struct.pack("<i", -abs(code)))
