"""The one subject grammar (ARCHITECTURE.md section 3). No other module spells a subject."""

from __future__ import annotations

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
