"""Auth-key creation, server side: ``req_pq_multi``, ``req_DH_params``, ``set_client_DH_params``.

Uses Telegram's RSA "old" padding (what Telethon 1.x sends), Telegram's 2048-bit DH prime with
g = 3, and the emulator's fixed test-only RSA key from :mod:`tg_emulator.keys`.
"""

from __future__ import annotations

import os
import secrets
import struct
import time
from functools import lru_cache
from hashlib import sha1

from cryptography.hazmat.primitives import serialization
from telethon import helpers
from telethon.crypto import AES
from telethon.extensions import BinaryReader
from telethon.tl import functions, types
from telethon.tl.tlobject import TLObject

from ..keys import PRIVATE_KEY_PEM
from .crypto import AuthKeyData

# Telegram's DH prime (also the SRP prime Telethon knows and does not try to factor).
DH_PRIME = int.from_bytes(
    bytes.fromhex(
        "C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F"
        "48198A0AA7C14058229493D22530F4DBFA336F6E0AC925139543AED44CCE7C37"
        "20FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F64"
        "2477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4"
        "A4A695811051907E162753B56B0F6B410DBA74D8A84B2A14B3144E0EF1284754"
        "FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF5B9AE4"
        "E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F"
        "0D8115F635B105EE2E4E15D04B2454BF6F4FADF034B10403119CD8E3B92FCC5B"
    ),
    "big",
)
DH_G = 3
_SAFETY = 2 ** (2048 - 64)


class HandshakeError(Exception):
    """The client's handshake message is inconsistent; the connection is closed."""


def _byte_array(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def auth_key_bytes(gab: int) -> bytes:
    """The auth key as Telegram keeps it: always 256 bytes, leading zeros included.

    Telethon strips leading zero bytes from its copy; when g^ab happens to start with a zero byte (1 time
    in 256) its nonce-hash check then fails and it generates another key, as against Telegram. Stripping
    them here too would accept a key that Telethon's StringSession later saves padded at the end, so the
    reloaded session would carry a key this server never saw (AUTH_KEY_NOT_FOUND after a restart).
    """
    return gab.to_bytes(256, "big")


class ServerKey:
    """The RSA private key with its Telegram fingerprint."""

    def __init__(self, pem: str) -> None:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        nums = key.private_numbers()  # type: ignore[union-attr]
        self.n = nums.public_numbers.n
        self.e = nums.public_numbers.e
        self._p, self._q = nums.p, nums.q
        self._dp, self._dq, self._qinv = nums.dmp1, nums.dmq1, nums.iqmp
        data = TLObject.serialize_bytes(_byte_array(self.n)) + TLObject.serialize_bytes(_byte_array(self.e))
        self.fingerprint = struct.unpack("<q", sha1(data).digest()[-8:])[0]

    def decrypt_raw(self, cipher: bytes) -> bytes:
        c = int.from_bytes(cipher, "big")
        if c >= self.n:
            raise HandshakeError("RSA cipher text out of range")
        # CRT: about four times faster than pow(c, d, n) in pure Python.
        m1 = pow(c, self._dp, self._p)
        m2 = pow(c, self._dq, self._q)
        h = (self._qinv * (m1 - m2)) % self._p
        return (m2 + h * self._q).to_bytes(256, "big")


@lru_cache(maxsize=1)
def server_key() -> ServerKey:
    return ServerKey(PRIVATE_KEY_PEM)


def _small_prime(rng: secrets.SystemRandom) -> int:
    # ~20-bit factors keep Telethon's pure-Python factorisation of pq well under a millisecond.
    while True:
        n = rng.randrange(2**19, 2**20) | 1
        if all(n % d for d in range(3, int(n**0.5) + 1, 2)):
            return n


class Handshake:
    """State of one auth-key exchange on one connection."""

    def __init__(self) -> None:
        self.nonce: int | None = None
        self.server_nonce: int | None = None
        self.new_nonce: int | None = None
        self.pq = 0
        self.a = 0
        self.tmp_key = b""
        self.tmp_iv = b""

    def handle(self, request: object) -> tuple[bytes, AuthKeyData | None]:
        """Answer one plain handshake request; returns (answer bytes, new auth key if done)."""
        if isinstance(request, functions.ReqPqMultiRequest | functions.ReqPqRequest):
            return self._req_pq(request.nonce), None
        if isinstance(request, functions.ReqDHParamsRequest):
            return self._req_dh(request), None
        if isinstance(request, functions.SetClientDHParamsRequest):
            return self._set_client_dh(request)
        raise HandshakeError(f"unexpected plain message {type(request).__name__}")

    def _req_pq(self, nonce: int) -> bytes:
        rng = secrets.SystemRandom()
        # Telethon reads pq as a *signed* big-endian number: keep its top bit clear.
        while True:
            p, q = _small_prime(rng), _small_prime(rng)
            if p != q and (p * q).bit_length() % 8:
                break
        self.pq = p * q
        self.nonce = nonce
        self.server_nonce = int.from_bytes(os.urandom(16), "little", signed=True)
        return bytes(
            types.ResPQ(
                nonce=nonce,
                server_nonce=self.server_nonce,
                pq=_byte_array(self.pq),
                server_public_key_fingerprints=[server_key().fingerprint],
            )
        )

    def _check_nonces(self, nonce: int, server_nonce: int) -> None:
        if self.nonce is None or nonce != self.nonce or server_nonce != self.server_nonce:
            raise HandshakeError("handshake nonce mismatch")

    def _req_dh(self, req: functions.ReqDHParamsRequest) -> bytes:
        self._check_nonces(req.nonce, req.server_nonce)
        key = server_key()
        if req.public_key_fingerprint != key.fingerprint:
            raise HandshakeError("unknown RSA fingerprint")
        plain = key.decrypt_raw(req.encrypted_data)
        # Telethon encrypts sha1(data) + data + random padding as a 255-byte big-endian number.
        plain = plain[1:] if plain[0] == 0 else plain
        digest, rest = plain[:20], plain[20:]
        with BinaryReader(rest) as reader:
            inner = reader.tgread_object()
            length = reader.tell_position()
        if sha1(rest[:length]).digest() != digest:
            raise HandshakeError("PQInnerData hash mismatch")
        if not isinstance(inner, types.PQInnerData | types.PQInnerDataDc):
            raise HandshakeError(f"unexpected inner data {type(inner).__name__}")
        self._check_nonces(inner.nonce, inner.server_nonce)
        p, q = int.from_bytes(inner.p, "big"), int.from_bytes(inner.q, "big")
        if p * q != self.pq or int.from_bytes(req.p, "big") * int.from_bytes(req.q, "big") != self.pq:
            raise HandshakeError("wrong factorisation of pq")
        self.new_nonce = inner.new_nonce
        # A 256-bit secret exponent is plenty for a loopback test server and 8x cheaper than 2048.
        while True:
            self.a = int.from_bytes(os.urandom(32), "big")
            g_a = pow(DH_G, self.a, DH_PRIME)
            if _SAFETY <= g_a <= DH_PRIME - _SAFETY:
                break
        answer = bytes(
            types.ServerDHInnerData(
                nonce=self.nonce,
                server_nonce=self.server_nonce,
                g=DH_G,
                dh_prime=_byte_array(DH_PRIME),
                g_a=_byte_array(g_a),
                server_time=int(time.time()),
            )
        )
        self.tmp_key, self.tmp_iv = helpers.generate_key_data_from_nonce(self.server_nonce, self.new_nonce)
        encrypted = AES.encrypt_ige(sha1(answer).digest() + answer, self.tmp_key, self.tmp_iv)
        return bytes(
            types.ServerDHParamsOk(
                nonce=self.nonce, server_nonce=self.server_nonce, encrypted_answer=encrypted
            )
        )

    def _set_client_dh(self, req: functions.SetClientDHParamsRequest) -> tuple[bytes, AuthKeyData]:
        self._check_nonces(req.nonce, req.server_nonce)
        if not self.tmp_key or self.new_nonce is None:
            raise HandshakeError("set_client_DH_params before req_DH_params")
        if len(req.encrypted_data) % 16:
            raise HandshakeError("client DH data is not a whole number of AES blocks")
        plain = AES.decrypt_ige(req.encrypted_data, self.tmp_key, self.tmp_iv)
        digest, rest = plain[:20], plain[20:]
        with BinaryReader(rest) as reader:
            inner = reader.tgread_object()
            length = reader.tell_position()
        if sha1(rest[:length]).digest() != digest:
            raise HandshakeError("ClientDHInnerData hash mismatch")
        if not isinstance(inner, types.ClientDHInnerData):
            raise HandshakeError(f"unexpected client DH data {type(inner).__name__}")
        self._check_nonces(inner.nonce, inner.server_nonce)
        g_b = int.from_bytes(inner.g_b, "big")
        if not (_SAFETY <= g_b <= DH_PRIME - _SAFETY):
            raise HandshakeError("g_b out of the safe range")
        auth_key = AuthKeyData(auth_key_bytes(pow(g_b, self.a, DH_PRIME)))
        new_nonce = self.new_nonce.to_bytes(32, "little", signed=True)
        nnh = int.from_bytes(
            sha1(new_nonce + struct.pack("<BQ", 1, auth_key.aux_hash)).digest()[4:20], "little", signed=True
        )
        answer = bytes(types.DhGenOk(nonce=self.nonce, server_nonce=self.server_nonce, new_nonce_hash1=nnh))
        return answer, auth_key
