"""Issue 13, finding 7: a command that skipped the gateway is refused by the service itself.

A command message must carry the gateway's signature of its principal (busauth.py), and the role it
names must reach the command's least role; else the service answers UNAUTHORIZED / FORBIDDEN and the
handler never runs. Unit tests of the signature, and component tests on a service runtime (in-memory
broker, real database)."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from tgm_contracts import Headers, Role, Service
from tgm_contracts.commands.telegram_ops import (
    DeleteApiCredential,
    DeleteApiCredentialResult,
    GetApiCredentials,
)
from tgm_runtime.busauth import SIGNATURE, TIMESTAMP, BusAuth, derive_bus_key
from tgm_runtime.config import RuntimeSettings
from tgm_runtime.runtime import ServiceRuntime
from tgm_runtime.testing import bare_runtime, runtime_client, signed_headers

pytestmark = [pytest.mark.timeout(30)]

KEY = derive_bus_key(b"k" * 32)
SUBJECT = DeleteApiCredential.SUBJECT
BODY = b'{"id":"c1"}'


@pytest.mark.unit
def test_a_signature_holds_only_for_its_subject_payload_principal_role_and_time() -> None:
    auth = BusAuth([KEY])
    headers = auth.headers(SUBJECT, BODY, "k-1", Role.ADMIN)
    assert auth.check(SUBJECT, BODY, headers, Role.ADMIN) is None
    assert headers[Headers.PRINCIPAL] == "k-1" and headers[Headers.ROLE] == "admin"

    def refused(**changes: Any) -> str:
        subject, body = changes.pop("subject", SUBJECT), changes.pop("body", BODY)
        least = changes.pop("least", Role.ADMIN)
        refusal = auth.check(subject, body, {**headers, **changes}, least, now=changes.pop("now", None))
        assert refusal is not None
        return refusal.code.value

    assert refused(subject="tgm.tg-session.cmd.save-api-credential.v1") == "UNAUTHORIZED"
    assert refused(body=b'{"id":"c2"}') == "UNAUTHORIZED"
    assert refused(**{Headers.PRINCIPAL: "k-2"}) == "UNAUTHORIZED"
    assert refused(**{Headers.ROLE: "admin ", TIMESTAMP: headers[TIMESTAMP]}) == "UNAUTHORIZED"
    assert refused(**{SIGNATURE: ""}) == "UNAUTHORIZED"
    assert refused(**{TIMESTAMP: "soon"}) == "UNAUTHORIZED"
    assert auth.check(SUBJECT, BODY, {Headers.ROLE: "admin"}, Role.VIEWER) is not None  # no signature
    stale = auth.headers(SUBJECT, BODY, "k-1", Role.ADMIN, now=time.time() - 600)
    assert auth.check(SUBJECT, BODY, stale, Role.ADMIN) is not None
    # A viewer's valid signature on an admin command: authentic, but not enough.
    viewer = auth.headers(SUBJECT, BODY, "k-1", Role.VIEWER)
    refusal = auth.check(SUBJECT, BODY, viewer, Role.ADMIN)
    assert refusal is not None and refusal.code.value == "FORBIDDEN"
    assert auth.check(SUBJECT, BODY, viewer, Role.VIEWER) is None
    # Another key (another deployment, a guess) is refused; a previous key is accepted while rotating.
    assert BusAuth([derive_bus_key(b"x" * 32)]).check(SUBJECT, BODY, headers, Role.ADMIN) is not None
    assert BusAuth([derive_bus_key(b"n" * 32), KEY]).check(SUBJECT, BODY, headers, Role.ADMIN) is None


@pytest.mark.unit
def test_the_bus_key_is_derived_from_the_master_key_or_given() -> None:
    master = base64.b64encode(b"m" * 32).decode()
    a = ServiceRuntime(Service.GATEWAY, "t", settings=RuntimeSettings(master_key=master))
    b = ServiceRuntime(Service.TG_SESSION, "t", settings=RuntimeSettings(master_key=master))
    headers = a.bus_auth.headers(SUBJECT, BODY, "k", Role.ADMIN)
    assert b.bus_auth.check(SUBJECT, BODY, headers, Role.ADMIN) is None  # one deployment, one key
    assert b.bus_auth.keys == (derive_bus_key(b"m" * 32),)
    given = base64.b64encode(b"g" * 32).decode()
    c = ServiceRuntime(Service.TG_SESSION, "t", settings=RuntimeSettings(master_key=master, bus_key=given))
    assert (
        c.bus_auth.keys == (b"g" * 32,) and c.bus_auth.check(SUBJECT, BODY, headers, Role.ADMIN) is not None
    )


def _session_with_commands() -> tuple[ServiceRuntime[Any], list[str]]:
    rt = bare_runtime(Service.TG_SESSION, tag="ba")
    ran: list[str] = []

    @rt.command(DeleteApiCredential)
    async def delete(req: Any, ctx: Any) -> DeleteApiCredentialResult:
        ran.append(f"{req.id} by {ctx.principal} ({ctx.role})")
        return DeleteApiCredentialResult(id=req.id, deleted=True)

    @rt.command(GetApiCredentials)
    async def listing(req: Any, ctx: Any) -> Any:
        ran.append("list")
        return {"items": [], "capacity": 0, "inUse": 0}

    return rt, ran


@pytest.mark.component
async def test_an_unsigned_command_is_refused_and_nothing_runs(mongo_server: Any) -> None:
    rt, ran = _session_with_commands()
    async with runtime_client(rt, mongo_server.uri) as client:
        # The case: the role header alone, as any process on the bus could send it.
        reply = await client.request(SUBJECT, {"id": "c1"}, role="admin", signed=False)
        assert reply["ok"] is False and reply["error"]["code"] == "UNAUTHORIZED", reply
        # A signature by another key, and a signed body swapped for another, are refused too.
        data = b'{"id": "c1"}'
        forged = signed_headers(BusAuth([derive_bus_key(b"x" * 32)]), SUBJECT, data)
        reply = await client.broker.request(data, subject=SUBJECT, headers=forged, timeout=10)
        assert b"UNAUTHORIZED" in reply.body
        swapped = signed_headers(rt, SUBJECT, b'{"id": "c0"}')
        reply = await client.broker.request(data, subject=SUBJECT, headers=swapped, timeout=10)
        assert b"UNAUTHORIZED" in reply.body
        assert ran == []
        assert rt.handled.labels(DeleteApiCredential.NAME, "UNAUTHORIZED")._value.get() == 3
        # Signed as the gateway signs it: it runs, and the handler sees the signed principal.
        ok = await client.request(SUBJECT, {"id": "c1"}, role="admin", principal="k-admin")
        assert ok == {"ok": True, "data": {"id": "c1", "deleted": True, "reassignedAccounts": 0}}
        assert ran == ["c1 by k-admin (admin)"]


@pytest.mark.component
async def test_a_signed_viewer_on_an_admin_command_is_forbidden_by_the_service(mongo_server: Any) -> None:
    rt, ran = _session_with_commands()
    async with runtime_client(rt, mongo_server.uri) as client:
        reply = await client.request(SUBJECT, {"id": "c1"}, role="viewer", principal="k-viewer")
        assert reply["ok"] is False and reply["error"]["code"] == "FORBIDDEN", reply
        assert "admin" in reply["error"]["message"]
        operator = await client.request(SUBJECT, {"id": "c1"}, role="operator", principal="k-op")
        assert operator["error"]["code"] == "FORBIDDEN"
        assert ran == []
        # The viewer may still run what a viewer may.
        assert (await client.request(GetApiCredentials.SUBJECT, {}, role="viewer"))["ok"]
        assert ran == ["list"]
