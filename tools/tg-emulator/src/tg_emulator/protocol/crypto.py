"""MTProto 2.0 message encryption, server side (x = 8 when sending, 0 when receiving)."""

from __future__ import annotations

import os
import struct
from hashlib import sha1, sha256

from telethon.crypto import AES


class AuthKeyData:
    """An auth key: 256 bytes as Telegram keeps it (see handshake.auth_key_bytes)."""

    __slots__ = ("aux_hash", "key", "key_id")

    def __init__(self, key: bytes) -> None:
        self.key = key
        digest = sha1(key).digest()
        self.aux_hash = struct.unpack("<Q", digest[:8])[0]
        self.key_id = struct.unpack("<Q", digest[12:20])[0]


def _calc_key(auth_key: bytes, msg_key: bytes, x: int) -> tuple[bytes, bytes]:
    sha256a = sha256(msg_key + auth_key[x : x + 36]).digest()
    sha256b = sha256(auth_key[x + 40 : x + 76] + msg_key).digest()
    aes_key = sha256a[:8] + sha256b[8:24] + sha256a[24:32]
    aes_iv = sha256b[:8] + sha256a[8:24] + sha256b[24:32]
    return aes_key, aes_iv


class DecryptError(Exception):
    """A client packet that does not decrypt or verify under its auth key."""


def decrypt_from_client(auth_key: bytes, packet: bytes) -> bytes:
    """Plaintext (salt, session_id, msg_id, seq_no, length, body, padding) of a client packet."""
    if len(packet) < 8 + 16 + 32 or (len(packet) - 24) % 16:
        raise DecryptError("encrypted packet has a bad length")
    msg_key = packet[8:24]
    aes_key, aes_iv = _calc_key(auth_key, msg_key, 0)
    plain = AES.decrypt_ige(packet[24:], aes_key, aes_iv)
    if sha256(auth_key[88:120] + plain).digest()[8:24] != msg_key:
        raise DecryptError("msg_key does not match the decrypted payload")
    return plain


def encrypt_to_client(auth_key: AuthKeyData, plain: bytes) -> bytes:
    padding = os.urandom(-(len(plain) + 12) % 16 + 12)
    data = plain + padding
    msg_key = sha256(auth_key.key[96:128] + data).digest()[8:24]
    aes_key, aes_iv = _calc_key(auth_key.key, msg_key, 8)
    return struct.pack("<Q", auth_key.key_id) + msg_key + AES.encrypt_ige(data, aes_key, aes_iv)
