"""Code and QR login on the emulator: every step evented, wrong codes and passwords, restarts in the
middle of a login, logout."""

from __future__ import annotations

import base64

import pytest
from tgm_contracts.commands import accounts as A

from .conftest import until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PHONE = "+15550100001"


def token_of(url: str) -> bytes:
    text = url.split("token=", 1)[1]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def test_wrong_code_then_right_code_and_resend(replicas, tg_world, events):
    tg_world.add_user(PHONE, first_name="Ann")
    r = await replicas()
    acc = await r.ok(A.AddAccount, {"phone": PHONE})
    step = await r.ok(A.LoginAccount, {"accountId": acc["id"]})
    assert step["state"] == "code_sent" and step["codeType"] == "sms" and step["codeLength"] == 5
    bad = await r.call(
        A.VerifyCode,
        {"accountId": acc["id"], "phoneCode": "00000" if tg_world.last_code(PHONE) != "00000" else "11111"},
    )
    assert (
        bad["error"]["code"] == "LOGIN_REJECTED"
        and bad["error"]["details"]["telegramError"] == "PHONE_CODE_INVALID"
        and bad["error"]["details"]["restart"] is False
        and bad["error"]["message"] == "the code is wrong; try again"
    )
    failed = await events.wait("login-failed")
    assert failed["recoverable"] is True and failed["error"] == "PHONE_CODE_INVALID"
    resent = await r.ok(A.ResendCode, {"accountId": acc["id"]})
    assert resent["next"] == "code"
    await events.wait("login-code-sent", lambda d: d["resent"])
    done = await r.ok(A.VerifyCode, {"accountId": acc["id"], "phoneCode": tg_world.last_code(PHONE)})
    assert done["next"] == "done" and done["account"]["hasSession"]


async def test_login_survives_a_restart_between_code_and_password(replicas, tg_world):
    tg_world.add_user(PHONE, first_name="Ann", password="hunter2")
    r1 = await replicas("r1")
    acc = await r1.ok(A.AddAccount, {"phone": PHONE})
    await r1.ok(A.LoginAccount, {"accountId": acc["id"]})
    step = await r1.ok(A.VerifyCode, {"accountId": acc["id"], "phoneCode": tg_world.last_code(PHONE)})
    assert step["next"] == "password" and step["state"] == "password_needed"
    await r1.rt.stop()
    r2 = await replicas("r2")  # a different process continues the same login
    wrong = await r2.call(A.SubmitTwoFactorPassword, {"accountId": acc["id"], "password": "nope"})
    assert wrong["error"]["code"] == "LOGIN_REJECTED"
    assert wrong["error"]["details"]["telegramError"] == "PASSWORD_HASH_INVALID"
    done = await r2.ok(A.SubmitTwoFactorPassword, {"accountId": acc["id"], "password": "hunter2"})
    assert done["next"] == "done" and done["account"]["twoFactorEnabled"] is True
    await until(lambda: r2.svc.pool.get(acc["id"]) is not None and r2.svc.pool.get(acc["id"]).connected)


async def test_expired_code_fails_clearly(replicas, tg_world, events):
    tg_world.add_user(PHONE, first_name="Ann")
    r = await replicas()
    acc = await r.ok(A.AddAccount, {"phone": PHONE})
    await r.ok(A.LoginAccount, {"accountId": acc["id"]})
    tg_world.advance(tg_world.limits.code_ttl + 1)
    reply = await r.call(A.VerifyCode, {"accountId": acc["id"], "phoneCode": tg_world.last_code(PHONE)})
    assert reply["error"]["code"] == "LOGIN_REJECTED" and reply["error"]["details"]["restart"] is True
    assert reply["error"]["details"]["telegramError"] == "PHONE_CODE_EXPIRED"
    assert (await events.wait("login-failed"))["recoverable"] is False
    view = (await r.ok(A.GetAccounts, {"ids": [acc["id"]]}))["items"][0]
    assert view["state"] == "new"
    again = await r.call(A.VerifyCode, {"accountId": acc["id"], "phoneCode": "12345"})
    assert again["error"]["code"] == "CONFLICT"  # nothing pending: login-account starts over


async def test_qr_login_creates_the_account(replicas, tg_world, events):
    u = tg_world.add_user(PHONE, first_name="Quinn", username="quinn_q")
    r = await replicas()
    qr = await r.ok(A.QrLoginCreate, {"label": "from qr", "group": "QR", "imageFormat": "png"})
    assert qr["state"] == "pending" and qr["qrUrl"].startswith("tg://login?token=")
    assert base64.b64decode(qr["qrImageBase64"])[:8] == b"\x89PNG\r\n\x1a\n"
    svg = await r.ok(
        A.QrLoginStatus, {"sessionId": qr["sessionId"], "includeImage": True, "imageFormat": "svg"}
    )
    assert b"<svg" in base64.b64decode(svg["qrImageBase64"])
    tg_world.accept_login_token(u, token_of(qr["qrUrl"]))
    await events.wait("qr-login-updated", lambda d: d["state"] == "success")
    status = await r.ok(A.QrLoginStatus, {"sessionId": qr["sessionId"]})
    assert status["state"] == "success" and status["phone"] == PHONE and status["qrUrl"] is None
    logged = await events.wait("account-logged-in", lambda d: d["method"] == "qr")
    assert logged["newAccount"] is True
    # The new account is announced before the login makes it active (issue 12: consumers that went by
    # arrival order counted it `new` forever), and the state change says when it happened.
    mine = [
        (name, d)
        for name, d in events.items
        if name in ("account-added", "account-status-changed") and d["accountId"] == status["accountId"]
    ]
    assert [(name, d.get("state")) for name, d in mine] == [
        ("account-added", None),
        ("account-status-changed", "active"),
    ]
    assert mine[1][1]["stateAt"] is not None
    view = (await r.ok(A.GetAccounts, {"ids": [status["accountId"]]}))["items"][0]
    assert view["label"] == "from qr" and view["group"] == "QR" and view["state"] == "active"
    await until(
        lambda: (
            r.svc.pool.get(status["accountId"]) is not None and r.svc.pool.get(status["accountId"]).connected
        )
    )


async def test_qr_login_with_2fa_refresh_and_cancel(replicas, tg_world, events):
    u = tg_world.add_user(PHONE, first_name="Quinn", password="s3cret")
    r = await replicas()
    qr = await r.ok(A.QrLoginCreate, {})
    fresh = await r.ok(A.QrLoginRefresh, {"sessionId": qr["sessionId"]})
    assert fresh["qrUrl"] != qr["qrUrl"] and fresh["state"] == "pending"
    await events.wait("qr-login-updated", lambda d: d["qrUrl"] == fresh["qrUrl"])
    from tg_emulator.errors import RpcFail

    with pytest.raises(RpcFail):
        tg_world.accept_login_token(u, token_of(qr["qrUrl"]))  # the old token is dead
    tg_world.accept_login_token(u, token_of(fresh["qrUrl"]))
    await events.wait("login-password-needed", lambda d: d["qrSessionId"] == qr["sessionId"])
    wrong = await r.call(A.QrLoginSubmit2fa, {"sessionId": qr["sessionId"], "password": "nope"})
    assert wrong["error"]["code"] == "LOGIN_REJECTED"
    assert wrong["error"]["details"]["telegramError"] == "PASSWORD_HASH_INVALID"
    done = await r.ok(A.QrLoginSubmit2fa, {"sessionId": qr["sessionId"], "password": "s3cret"})
    assert done["state"] == "success"
    other = await r.ok(A.QrLoginCreate, {})
    cancelled = await r.ok(A.QrLoginCancel, {"sessionId": other["sessionId"]})
    assert cancelled["state"] == "cancelled" and cancelled["qrUrl"] is None
    again = await r.call(A.QrLoginCancel, {"sessionId": other["sessionId"]})
    assert again["error"]["code"] == "CONFLICT"


async def test_qr_login_scanned_while_its_replica_was_down(replicas, tg_world):
    u = tg_world.add_user(PHONE, first_name="Quinn")
    r1 = await replicas("r1")
    qr = await r1.ok(A.QrLoginCreate, {})
    await r1.rt.stop()
    tg_world.accept_login_token(u, token_of(qr["qrUrl"]))
    r2 = await replicas("r2")
    # r2 adopts the orphaned login (its lease is released on a clean stop), asks Telegram again.

    async def done():
        return (await r2.ok(A.QrLoginStatus, {"sessionId": qr["sessionId"]}))["state"] == "success"

    await until(done, timeout=20)


async def test_logout(replicas, tg_world, events):
    u = tg_world.add_user(PHONE, first_name="Lou")
    r = await replicas()
    acc = await r.ok(A.AddAccount, {"phone": PHONE})
    await r.ok(A.LoginAccount, {"accountId": acc["id"]})
    await r.ok(A.VerifyCode, {"accountId": acc["id"], "phoneCode": tg_world.last_code(PHONE)})
    await until(lambda: r.svc.pool.get(acc["id"]) is not None and r.svc.pool.get(acc["id"]).connected)
    assert len(tg_world.sessions_of(u)) == 1
    view = await r.ok(A.LogoutAccount, {"confirm": True, "accountId": acc["id"]})
    assert view["state"] == "new" and view["hasSession"] is False
    assert tg_world.sessions_of(u) == []
    await until(lambda: r.svc.pool.get(acc["id"]) is None)
