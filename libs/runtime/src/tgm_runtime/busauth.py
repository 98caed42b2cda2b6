"""The principal on a command, signed: a message that skipped the gateway is refused (issue 13, finding 7).

The gateway signs what it forwards with every command — the subject, the caller's key id and role, a
timestamp and the SHA-256 of the payload — with HMAC-SHA256 under the bus key, and every service checks
the signature and the command's least role (its contract's `ROLE`) before any handler runs
(`ServiceRuntime.dispatch`): no valid signature is `UNAUTHORIZED`, a role below the least role is
`FORBIDDEN`, and nothing runs. A service that runs another service's command itself
(`runtime.call(GetAccounts, ...)`) signs as `service:<name>` with that command's least role; which
commands it may reach at all is its NATS permission (tgm_contracts.bus). Rpcs, account calls and sys
ops carry no signature: only services publish them, guarded by the NATS permissions.

The bus key: `TGM_BUS_KEY` (base64, at least 32 bytes) when set, else derived from the master key
(HMAC-SHA256(master key, "tgm bus key v1")), which every service of a deployment already shares; keys
derived from the previous master keys are accepted too while a rotation rolls out. Signing is symmetric:
any holder of the key (every service) can sign; what it proves is that the message came from the
gateway or a service, not from a process that merely reaches NATS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tgm_contracts import ErrorCode, Headers, Role

#: Headers the signature travels in (beside `tgm-principal` and `tgm-role`).
TIMESTAMP = "tgm-auth-ts"
SIGNATURE = "tgm-auth-sig"
VERSION = "v1"
#: How far a signature's timestamp may be from the receiver's clock (clock skew and queueing).
MAX_SKEW_SECONDS = 120.0

_DERIVE = b"tgm bus key v1"


def derive_bus_key(master_key: bytes) -> bytes:
    return hmac.new(master_key, _DERIVE, hashlib.sha256).digest()


def decode_bus_key(text: str) -> bytes:
    key = base64.b64decode(text.strip())
    if len(key) < 32:
        raise ValueError("TGM_BUS_KEY must be at least 32 bytes, base64-encoded")
    return key


def _mac(key: bytes, subject: str, body: bytes, principal: str, role: str, ts: str) -> str:
    text = f"{VERSION}\n{subject}\n{principal}\n{role}\n{ts}\n".encode()
    digest = hmac.new(key, text + hashlib.sha256(body).digest(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class Refusal:
    code: ErrorCode
    message: str


class BusAuth:
    """Signs with the first key; accepts a signature by any of them."""

    def __init__(self, keys: Iterable[bytes]) -> None:
        self.keys = tuple(keys)
        if not self.keys:
            raise ValueError("a bus key is needed")

    def headers(
        self, subject: str, body: bytes, principal: str, role: Role | str, *, now: float | None = None
    ) -> dict[str, str]:
        """The principal headers of one command message, signed."""
        label = role.label if isinstance(role, Role) else role
        ts = f"{now if now is not None else time.time():.3f}"
        headers = {
            Headers.ROLE: label,
            TIMESTAMP: ts,
            SIGNATURE: _mac(self.keys[0], subject, body, principal, label, ts),
        }
        if principal:  # none: a test's anonymous caller (the header is absent, signed as "")
            headers[Headers.PRINCIPAL] = principal
        return headers

    def check(
        self,
        subject: str,
        body: bytes,
        headers: Mapping[str, str] | None,
        least: Role,
        *,
        now: float | None = None,
    ) -> Refusal | None:
        """None when the message carries a valid signature of a role of at least `least`."""
        headers = headers or {}
        principal = headers.get(Headers.PRINCIPAL) or ""
        role = headers.get(Headers.ROLE) or ""
        ts, sig = headers.get(TIMESTAMP), headers.get(SIGNATURE)
        if not ts or not sig:
            return Refusal(
                ErrorCode.UNAUTHORIZED,
                "the command carries no gateway signature: send it through the gateway",
            )
        try:
            skew = abs((now if now is not None else time.time()) - float(ts))
        except ValueError:
            skew = float("inf")
        if not skew <= MAX_SKEW_SECONDS:
            return Refusal(ErrorCode.UNAUTHORIZED, "the command's signature is stale or from the future")
        if not any(hmac.compare_digest(sig, _mac(k, subject, body, principal, role, ts)) for k in self.keys):
            return Refusal(ErrorCode.UNAUTHORIZED, "the command's gateway signature is not valid")
        try:
            granted = Role.parse(role)
        except (ValueError, KeyError):
            return Refusal(ErrorCode.FORBIDDEN, f"unknown role {role[:20]!r}")
        if granted < least:
            return Refusal(
                ErrorCode.FORBIDDEN,
                f"this command needs the {least.label} role; the caller has {granted.label}",
            )
        return None
