"""The one subject grammar (ARCHITECTURE.md section 3). No other module spells a subject."""

from __future__ import annotations

from dataclasses import dataclass

from .enums import Service

ROOT = "tgm"


def command(owner: Service, name: str, major: int) -> str:
    return f"{ROOT}.{owner.value}.cmd.{name}.v{major}"


def rpc(owner: Service, name: str, major: int) -> str:
    return f"{ROOT}.{owner.value}.rpc.{name}.v{major}"


def account(account_id: str, name: str, major: int) -> str:
    if not account_id or any(c in account_id for c in ".*> \t"):
        raise ValueError(f"account id {account_id!r} cannot be a subject token")
    return f"{ROOT}.acct.{account_id}.{name}.v{major}"


def account_wildcard(account_id: str) -> str:
    """Everything addressed to one account: what its holder subscribes to."""
    return f"{ROOT}.acct.{account_id}.>"


def sys(service: Service, op: str, major: int = 1) -> str:
    return f"{ROOT}.{service.value}.sys.{op}.v{major}"


def sys_wildcard(op: str, major: int = 1) -> str:
    """Matches the same `sys` op of every service."""
    return f"{ROOT}.*.sys.{op}.v{major}"


def event(owner: Service, name: str, major: int) -> str:
    return f"{ROOT}.{owner.value}.evt.{name}.v{major}"


#: The subjects captured by the TGM_EVENTS stream.
EVENTS_FILTER = f"{ROOT}.*.evt.>"


def telemetry(service: Service, kind: str, major: int = 1) -> str:
    """Where a service ships its log batches (`logs`) and performance samples (`perf`)."""
    if kind not in ("logs", "perf"):
        raise ValueError(f"telemetry kind {kind!r} is not logs or perf")
    return f"{ROOT}.{service.value}.telemetry.{kind}.v{major}"


#: The subjects captured by the TGM_TELEMETRY stream.
TELEMETRY_FILTER = f"{ROOT}.*.telemetry.>"


def stream_chunk(stream_id: str) -> str:
    """Where a streamed AI completion publishes its chunks (core NATS, not JetStream)."""
    return f"{ROOT}.stream.{stream_id}"


# --- reading subjects back ----------------------------------------------------------------------------
# The inverse of the builders above, for the few places that learn something from the subject a message
# came on (which account was addressed, which event a pushed message is). Nothing else splits subjects.


@dataclass(frozen=True)
class AccountSubject:
    """`tgm.acct.<account_id>.<name>.v<major>`: a call addressed to one account's holder."""

    account_id: str
    name: str
    major: int


@dataclass(frozen=True)
class ServiceSubject:
    """`tgm.<service>.<kind>.<name>.v<major>` with kind `cmd`, `rpc`, `evt`, `sys` or `telemetry`."""

    service: str
    kind: str
    name: str
    major: int


def _major(token: str) -> int | None:
    if len(token) > 1 and token[0] == "v" and token[1:].isdigit():
        return int(token[1:])
    return None


def parse_account(subject: str) -> AccountSubject | None:
    """The account, call name and major version of an account subject, or None for any other."""
    parts = subject.split(".")
    if len(parts) != 5 or parts[0] != ROOT or parts[1] != "acct" or not parts[2]:
        return None
    major = _major(parts[4])
    return AccountSubject(parts[2], parts[3], major) if major is not None and parts[3] else None


def parse_service(subject: str) -> ServiceSubject | None:
    """The owner, kind, name and major version of a command, rpc, event, sys or telemetry subject."""
    parts = subject.split(".")
    if len(parts) != 5 or parts[0] != ROOT or parts[1] in ("acct", "stream"):
        return None
    if parts[2] not in ("cmd", "rpc", "evt", "sys", "telemetry") or not parts[3]:
        return None
    major = _major(parts[4])
    return ServiceSubject(parts[1], parts[2], parts[3], major) if major is not None else None


def account_of(subject: str) -> str:
    """The account id an account subject addresses (ValueError for any other subject)."""
    parsed = parse_account(subject)
    if parsed is None:
        raise ValueError(f"{subject!r} is not an account subject")
    return parsed.account_id
