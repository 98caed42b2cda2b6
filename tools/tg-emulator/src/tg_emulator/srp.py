"""Server side of Telegram's SRP 2FA check, built on ``telethon.password``."""

from __future__ import annotations

import hmac
import os
import struct

from telethon import password as tpw
from telethon.tl import types

from .errors import RpcFail
from .protocol.handshake import DH_G, DH_PRIME
from .world.model import AuthKeyRecord, User

_P_BYTES = DH_PRIME.to_bytes(256, "big")


def _algo(
    salt1: bytes, salt2: bytes
) -> types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow:
    return types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
        salt1=salt1, salt2=salt2, g=DH_G, p=_P_BYTES
    )


def _verifier(user: User) -> tuple[bytes, bytes, int]:
    """(salt1, salt2, v = g^x mod p) for the user's current password, computed once."""
    if user.srp is None or user.srp[0] != user.password:
        salt1, salt2 = os.urandom(32), os.urandom(16)
        assert user.password is not None
        v = int.from_bytes(tpw.compute_digest(_algo(salt1, salt2), user.password), "big")
        user.srp = (user.password, salt1, salt2, v)
    _, salt1, salt2, v = user.srp
    return salt1, salt2, v


def _k() -> int:
    return int.from_bytes(tpw.sha256(_P_BYTES, tpw.big_num_for_hash(DH_G)), "big")


def password_info(user: User | None, rec: AuthKeyRecord) -> types.account.Password:
    new_algo = _algo(os.urandom(32), os.urandom(16))
    common = dict(
        new_algo=new_algo,
        new_secure_algo=types.SecurePasswordKdfAlgoPBKDF2HMACSHA512iter100000(salt=os.urandom(8)),
        secure_random=os.urandom(256),
    )
    if user is None or not user.password:
        return types.account.Password(has_password=False, **common)
    salt1, salt2, v = _verifier(user)
    while True:
        b = int.from_bytes(os.urandom(256), "big")
        g_b = pow(DH_G, b, DH_PRIME)
        if tpw.is_good_mod_exp_first(g_b, DH_PRIME):
            break
    big_b = (_k() * v + g_b) % DH_PRIME
    srp_id = struct.unpack("<q", os.urandom(8))[0]
    rec.srp_b = (srp_id, b, big_b, user.id)
    return types.account.Password(
        has_password=True,
        current_algo=_algo(salt1, salt2),
        srp_B=big_b.to_bytes(256, "big"),
        srp_id=srp_id,
        hint=user.password_hint or None,
        **common,
    )


def check(user: User, rec: AuthKeyRecord, srp: types.TypeInputCheckPasswordSRP) -> None:
    """Verify an ``InputCheckPasswordSRP`` against the challenge last given to this key."""
    if not isinstance(srp, types.InputCheckPasswordSRP) or not user.password:
        raise RpcFail("PASSWORD_HASH_INVALID")
    if rec.srp_b is None or rec.srp_b[0] != srp.srp_id or rec.srp_b[3] != user.id:
        raise RpcFail("SRP_ID_INVALID")
    _, b, big_b, _ = rec.srp_b
    rec.srp_b = None  # one attempt per challenge, as on Telegram
    salt1, salt2, v = _verifier(user)
    a = int.from_bytes(srp.A, "big")
    if not 0 < a < DH_PRIME:
        raise RpcFail("PASSWORD_HASH_INVALID")
    a_for_hash = tpw.big_num_for_hash(a)
    b_for_hash = tpw.big_num_for_hash(big_b)
    u = int.from_bytes(tpw.sha256(a_for_hash, b_for_hash), "big")
    s = pow(a * pow(v, u, DH_PRIME) % DH_PRIME, b, DH_PRIME)
    k = tpw.sha256(tpw.big_num_for_hash(s))
    m1 = tpw.sha256(
        tpw.xor(tpw.sha256(_P_BYTES), tpw.sha256(tpw.big_num_for_hash(DH_G))),
        tpw.sha256(salt1),
        tpw.sha256(salt2),
        a_for_hash,
        b_for_hash,
        k,
    )
    if not hmac.compare_digest(m1, bytes(srp.M1)):
        raise RpcFail("PASSWORD_HASH_INVALID")
