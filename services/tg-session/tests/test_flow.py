"""The main flows on real infrastructure: nats-server, the database server, the emulator and Telethon."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from tgm_contracts.commands import accounts as A
from tgm_contracts.rpc_session import Send

from .conftest import until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PHONE = "+15550100001"


async def login_code(r, world, phone: str, password: str | None = None) -> dict:
    step = await r.ok(A.LoginAccount, {"phone": phone})
    assert step["next"] == "code" and step["phoneCodeHash"]
    code = world.last_code(phone)
    step = await r.ok(A.VerifyCode, {"phone": phone, "phoneCode": code})
    if password is not None:
        assert step["next"] == "password"
        step = await r.ok(A.SubmitTwoFactorPassword, {"phone": phone, "password": password})
    assert step["next"] == "done", step
    return step


async def test_add_login_with_2fa_connect_and_send(replicas, tg_world, events):
    alice = tg_world.add_user(
        PHONE, first_name="Alice", username="alice_a", password="pw 2fa", password_hint="pw"
    )
    bob = tg_world.add_user("+15550100002", first_name="Bob", username="bob_b")
    r = await replicas("r1")
    acc = await r.ok(A.AddAccount, {"phone": PHONE, "label": "main", "tags": ["t1"]})
    assert acc["state"] == "new" and acc["apiId"] == 1 and acc["device"]["deviceModel"]
    step = await login_code(r, tg_world, PHONE, password="pw 2fa")
    assert step["account"]["state"] == "active" and step["account"]["profile"]["telegramId"] == alice.id
    await events.wait("login-code-sent")
    await events.wait("login-password-needed")
    await events.wait("account-logged-in")
    # The pool claims and connects it.
    await until(lambda: r.svc.pool.get(acc["id"]) is not None and r.svc.pool.get(acc["id"]).connected)
    sent = await r.request(Send.subject(acc["id"]), {"jobId": "job-1", "peer": "@bob_b", "text": "hello bob"})
    assert sent["ok"], sent
    assert sent["data"]["duplicate"] is False and sent["data"]["peerId"] == bob.id
    again = await r.request(
        Send.subject(acc["id"]), {"jobId": "job-1", "peer": "@bob_b", "text": "hello bob"}
    )
    assert again["ok"] and again["data"]["duplicate"] is True
    assert again["data"]["messageId"] == sent["data"]["messageId"]
    hits = [d for d in tg_world.deliveries if d.to_user_id == bob.id and d.text == "hello bob"]
    assert len(hits) == 1
    # Bob answers: a message-received event.
    tg_world.post(bob, alice, "hi alice")
    ev = await events.wait("message-received", lambda d: d["text"] == "hi alice")
    assert ev["accountId"] == acc["id"] and ev["senderId"] == bob.id and ev["chatKind"] == "private"
    listed = await r.ok(A.GetAccounts, {"text": "main"})
    assert listed["total"] == 1 and listed["items"][0]["connected"] is True
    assert listed["items"][0]["holder"] == r.rt.settings.replica_id


async def test_flood_wait_and_revoked_session(replicas, tg_world, events):
    tg_world.add_user(PHONE, first_name="Alice")
    tg_world.add_user("+15550100002", first_name="Bob", username="bob_b")
    r = await replicas("r1")
    acc = await r.ok(A.AddAccount, {"phone": PHONE})
    await login_code(r, tg_world, PHONE)
    await until(lambda: r.svc.pool.get(acc["id"]) is not None and r.svc.pool.get(acc["id"]).connected)
    tg_world.faults.fail_next("messages.sendMessage", "FLOOD_WAIT_30")
    reply = await r.request(Send.subject(acc["id"]), {"jobId": "j-flood", "peer": "@bob_b", "text": "x"})
    assert not reply["ok"] and reply["error"]["code"] == "FLOOD_WAIT" and reply["error"]["retry_after"] == 30
    view = (await r.ok(A.GetAccounts, {"ids": [acc["id"]]}))["items"][0]
    assert view["state"] == "flood_wait" and view["floodWaitUntil"]
    await events.wait("flood-wait-recorded", lambda d: d["seconds"] == 30 and d["category"] == "send")
    # A second try inside the wait does not reach Telegram at all.
    before = len(tg_world.deliveries)
    reply = await r.request(Send.subject(acc["id"]), {"jobId": "j-flood", "peer": "@bob_b", "text": "x"})
    assert reply["error"]["code"] == "FLOOD_WAIT" and 28 <= reply["error"]["retry_after"] <= 30
    assert len(tg_world.deliveries) == before
    # Revoke the session at Telegram: the probe settles `unauthorized` with an alert event.
    tg_world.revoke(user=tg_world.user(PHONE))
    report = await r.ok(A.CheckAccountStatus, {"accountId": acc["id"]})
    assert report["state"] == "unauthorized" and report["reason"] == "AUTH_KEY_UNREGISTERED"
    ev = await events.wait("account-status-changed", lambda d: d["state"] == "unauthorized")
    assert ev["reason"] == "AUTH_KEY_UNREGISTERED"
    await until(lambda: r.svc.pool.get(acc["id"]) is None)


async def test_reconnects_after_dropped_connections_and_probes_notice_revocation(
    replicas, tg_emulator, tg_world, events
):
    u = tg_world.add_user(PHONE, first_name="Alice")
    tg_world.add_user("+15550100002", first_name="Bob", username="bob_b")
    r = await replicas("r1", probe_interval_seconds=0.5, reconnect_backoff_min_seconds=0.2)
    acc = await r.ok(A.AddAccount, {"phone": PHONE, "sessionString": tg_emulator.session_for(u)})
    await until(lambda: r.svc.pool.get(acc["id"]) is not None and r.svc.pool.get(acc["id"]).connected)
    first = r.svc.pool.get(acc["id"]).client
    # The network drops every connection of the account, three times over.
    for _ in range(3):
        tg_emulator.server.drop(user_id=u.id)
        await until(lambda: tg_emulator.server.by_user.get(u.id))
    reply = await r.request(
        Send.subject(acc["id"]), {"jobId": "after-drops", "peer": "@bob_b", "text": "back"}
    )
    assert reply["ok"], reply
    assert r.svc.pool.get(acc["id"]).client is not None and first is not None
    # A revoked session is noticed by the periodic probe alone, without any command.
    tg_world.revoke(user=u)
    ev = await events.wait(
        "account-status-changed", lambda d: d["accountId"] == acc["id"] and d["state"] == "unauthorized"
    )
    assert ev["reason"] == "AUTH_KEY_UNREGISTERED"
    await until(lambda: r.svc.pool.get(acc["id"]) is None)
    text = generate_latest(r.rt.registry).decode()
    assert 'tgm_session_sends_total{result="sent"} 1.0' in text
    assert 'tgm_session_state_changes_total{state="unauthorized"} 1.0' in text
    assert 'tgm_session_lease_moves_total{reason="acquired"}' in text
    assert PHONE not in text and "+1555" not in text  # no phone (nor any secret) in metric labels
