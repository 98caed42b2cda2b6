"""tg-session end to end: the stack as processes (nats-server, database, tg-session, campaign, gateway),
driven only through the gateway's HTTP API and WebSocket, against the Telegram emulator (running in
this process on a thread of its own, with its developer site) and the real Telethon inside
tg-session.

- onboarding: add an account, code login with 2FA, QR login; every step pushed over the WebSocket;
- messaging: a private message sent through the gateway lands in the emulator's world; the reply
  comes back as `message-received` over the WebSocket;
- groups: join a group, extract its 1,000 members with progress events, export them as CSV;
- health: a FLOOD_WAIT_30 marks the account `flood_wait` and the send reply carries retry_after 30;
  a revoked session moves the account to `unauthorized` with an alert event;
- scale-out: two tg-session replicas share 200 accounts; SIGKILL one; the survivor holds all 200
  within the lease TTL plus 10 s, and no session was ever connected twice (AUTH_KEY_DUPLICATED).
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_stack import Stack
from tgm_testing.gateway import EventFeed, GatewayClient, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


#: The module's stack, seen through its gateway: a client and the WebSocket on tg-session's events.
System = tuple[GatewayClient, EventFeed]


@pytest.fixture(scope="module")
def emulator(module_emulator: EmulatorThread) -> EmulatorThread:
    """One emulator for the module (`system` lasts the module), with the developer site the
    credential scrape signs in to."""
    return module_emulator


@pytest.fixture(scope="module")
def system(
    emulator: EmulatorThread, start_module_stack: Callable[..., Stack], fast_pacing: dict[str, Any]
) -> Iterator[System]:
    env = {"TGM_SESSION_EXTRACTION_PAGE_DELAY_SECONDS": "0.2", "TGM_SESSION_CLAIM_INTERVAL_SECONDS": "0.5"}
    stack = start_module_stack(services=("tg-session", "campaign"), emulator=emulator, env=env)
    with GatewayClient(stack) as gw, gw.events(["tgm.tg-session.evt.>"]) as pushed:
        gw.ok("save-settings", {"settings": {"pacing": fast_pacing}})  # immediate sends in these tests
        yield gw, pushed


def token_of(url: str) -> bytes:
    text = url.split("token=", 1)[1]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.timeout(240)
def test_onboarding_messaging_groups_and_extraction(system: System, emulator: EmulatorThread) -> None:
    gw, pushed = system
    world = emulator.world
    carol = emulator.do(world.add_user, "+15550110001", first_name="Carol", username="carol_c",
                        password="two factor", password_hint="tf")  # fmt: skip
    dave = emulator.do(world.add_user, "+15550110002", first_name="Dave", username="dave_d")
    erin = emulator.do(world.add_user, "+15550110003", first_name="Erin", username="erin_e")

    # --- add an account, code login with 2FA ------------------------------------------------------
    acc = gw.ok("add-account", {"phone": "+15550110001", "label": "carol"})
    step = gw.ok("login-account", {"accountId": acc["id"]})
    assert step["next"] == "code"
    pushed.wait("login-code-sent", lambda d: d["accountId"] == acc["id"])
    code = emulator.do(world.last_code, "+15550110001")
    step = gw.ok("verify-code", {"accountId": acc["id"], "phoneCode": code})
    assert step["next"] == "password" and step["passwordHint"] == "tf"
    pushed.wait("login-password-needed", lambda d: d["accountId"] == acc["id"])
    wrong = gw.post("submit-2fa-password", {"accountId": acc["id"], "password": "wrong"})
    assert wrong.status_code == 400, wrong.text  # the person's input, not a server error
    assert wrong.json()["error"]["code"] == "LOGIN_REJECTED"
    assert wrong.json()["error"]["details"]["telegramError"] == "PASSWORD_HASH_INVALID"
    step = gw.ok("submit-2fa-password", {"accountId": acc["id"], "password": "two factor"})
    assert step["next"] == "done" and step["account"]["profile"]["telegramId"] == carol.id
    pushed.wait("account-logged-in", lambda d: d["accountId"] == acc["id"] and d["method"] == "code")

    # --- QR login ---------------------------------------------------------------------------------
    qr = gw.ok("qr-login-create", {"label": "dave via qr"})
    assert qr["qrUrl"].startswith("tg://login?token=") and qr["qrImageMime"] == "image/png"
    emulator.do(world.accept_login_token, dave, token_of(qr["qrUrl"]))
    done = pushed.wait(
        "qr-login-updated", lambda d: d["sessionId"] == qr["sessionId"] and d["state"] == "success"
    )
    dave_acc = done["accountId"]
    assert gw.ok("qr-login-status", {"sessionId": qr["sessionId"]})["state"] == "success"

    # Both accounts connect.
    def connected(ids: list[str]) -> bool:
        items = gw.ok("get-accounts", {"ids": ids})["items"]
        return len(items) == len(ids) and all(i["connected"] and i["state"] == "active" for i in items)

    wait_until(lambda: connected([acc["id"], dave_acc]), 30, "both accounts connected")

    # --- send a private message through the gateway; it lands in the emulator's world ------------
    sent = gw.ok("send-private-message", {"accountId": acc["id"], "peer": "@erin_e", "text": "hello erin",
                                          "waitSeconds": 30})  # fmt: skip
    assert sent["state"] == "sent" and sent["messageId"], sent
    deliveries = emulator.do(lambda: [d.to_dict() for d in world.deliveries if d.to_user_id == erin.id])
    assert [d["text"] for d in deliveries] == ["hello erin"] and deliveries[0]["from_user_id"] == carol.id
    assert deliveries[0]["random_id"] is not None  # derived from the job id: Telegram's own dedupe key
    pushed.wait("message-sent", lambda d: d["accountId"] == acc["id"] and d["text"] == "hello erin")

    # --- the reply comes back as an event over the WebSocket ---------------------------------------
    emulator.do(world.post, erin, carol, "hi carol, got it")
    got = pushed.wait("message-received", lambda d: d["text"] == "hi carol, got it")
    assert got["accountId"] == acc["id"] and got["senderId"] == erin.id and got["chatKind"] == "private"

    # --- join a group, extract its 1,000 members with progress, export CSV ------------------------
    def big_group() -> int:
        from tg_emulator.world.seed import generate_members

        owner = world.add_user("+15550119999", first_name="Owner")
        ch = world.create_channel(owner, "Thousand Club", username="thousandclub")
        generate_members(world, ch, 1000)
        return ch.id

    emulator.do(big_group)
    joined = gw.ok("join-group", {"accountId": acc["id"], "groupUrl": "https://t.me/thousandclub"})
    assert joined["chat"]["title"] == "Thousand Club" and joined["chat"]["membersCount"] == 1002
    pushed.wait("group-joined", lambda d: d["title"] == "Thousand Club")
    job = gw.ok("extract-members", {"accountId": acc["id"], "group": "@thousandclub"})
    fin = pushed.wait("extraction-finished", lambda d: d["jobId"] == job["jobId"], timeout=120)
    assert fin["state"] == "completed"
    progress = [p for p in pushed.named("extraction-progress") if p["jobId"] == job["jobId"]]
    assert len(progress) >= 5 and progress[-1]["progress"] == 1.0
    status = gw.ok("get-extraction-status", {"jobId": job["jobId"]})["items"][0]
    # 1,000 members + the owner + our account scanned; our account (a fleet account) is not collected.
    assert status["scanned"] == 1002 and status["collected"] == 1001
    export = gw.ok("export-collected-users", {"jobId": job["jobId"], "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(export["contentBase64"]).decode("utf-8-sig"))))
    assert len(rows) == export["rows"] == 1001
    assert sum(1 for r in rows if r["first_name"].startswith("Member")) == 1000

    # --- FLOOD_WAIT_30 and a revoked session --------------------------------------------------------
    emulator.do(world.faults.fail_next, "messages.sendMessage", "FLOOD_WAIT_30", user_id=carol.id)
    flood = gw.call("send-private-message", {"accountId": acc["id"], "peer": "@erin_e", "text": "again",
                                             "waitSeconds": 15})  # fmt: skip
    view = gw.ok("get-accounts", {"ids": [acc["id"]]})["items"][0]
    assert view["state"] == "flood_wait" and view["floodWaitUntil"], (flood, view)
    recorded = pushed.wait("flood-wait-recorded", lambda d: d["accountId"] == acc["id"])
    assert recorded["seconds"] == 30 and recorded["category"] == "send"
    emulator.do(world.revoke, user=dave)
    report = gw.ok("check-account-status", {"accountId": dave_acc})
    assert report["state"] == "unauthorized" and report["reason"] == "AUTH_KEY_UNREGISTERED"
    alert = pushed.wait(
        "account-status-changed", lambda d: d["accountId"] == dave_acc and d["state"] == "unauthorized"
    )
    assert alert["previousState"] == "active"


@pytest.mark.timeout(420)
def test_two_replicas_200_accounts_sigkill_takeover(
    emulator: EmulatorThread, start_stack: Callable[..., Stack]
) -> None:
    world = emulator.world
    sessions = emulator.do(
        lambda: [
            (
                f"+1555012{i:04d}",
                emulator.emu.session_for(world.add_user(f"+1555012{i:04d}", first_name=f"F{i}")),
            )
            for i in range(200)
        ]
    )
    env = {"TGM_SESSION_CLAIM_INTERVAL_SECONDS": "1"}
    stack = start_stack(services=("tg-session",), replicas={"tg-session": 2}, emulator=emulator, env=env)
    with GatewayClient(stack) as gw:
        pool = gw.ok("get-api-credentials", {})["items"]
        gw.ok("save-api-credential", {"id": pool[0]["id"], "maxAccounts": 1000, "test": False})
        for phone, session in sessions:
            gw.ok("add-account", {"phone": phone, "sessionString": session})

        def holders() -> dict[str, int]:
            out: dict[str, int] = {}
            cursor = None
            while True:
                page = gw.ok("get-accounts", {"limit": 500, **({"cursor": cursor} if cursor else {})})
                for a in page["items"]:
                    if a["connected"] and a["state"] == "active":
                        out[a["holder"]] = out.get(a["holder"], 0) + 1
                cursor = page["nextCursor"]
                if cursor is None:
                    return out

        shares = wait_until(
            lambda: (h := holders()) and sum(h.values()) == 200 and h, 120, "all 200 held", interval=1.0
        )
        assert set(shares) == {"tg-session-0", "tg-session-1"} and min(shares.values()) >= 60, shares
        killed_at = time.monotonic()
        stack.kill("tg-session", 1)
        wait_until(lambda: holders().get("tg-session-0") == 200, 15 + 10 + 5, "the survivor holds all 200")
        took = time.monotonic() - killed_at
        assert took <= 15 + 10, f"took {took:.1f}s"
        dup = emulator.do(lambda: sum(1 for rec in world.auth_keys.values() if rec.revoked == "duplicated"))
        assert dup == 0
        print(f"\nshares before the kill: {shares}; all 200 held by tg-session-0 {took:.1f}s after SIGKILL")


@pytest.mark.timeout(300)
def test_all_54_commands_through_the_gateway(system: System, emulator: EmulatorThread) -> None:
    from tgm_contracts import REGISTRY, Service

    gw, pushed = system
    gw.called.clear()  # from here on, `called` counts the commands this test calls
    world = emulator.world
    users = {
        name: emulator.do(world.add_user, phone, first_name=name.title(), username=f"{name}_x", password=pw)
        for name, phone, pw in [("gina", "+15550130001", None), ("hank", "+15550130002", "pw-h"),
                                ("ivan", "+15550130003", None), ("judy", "+15550130004", None)]
    }  # fmt: skip

    def login(phone: str) -> str:
        acc = gw.ok("add-account", {"phone": phone, "group": "E2E", "tags": ["e2e"], "role": "sender"})
        gw.ok("login-account", {"accountId": acc["id"]})
        gw.ok("resend-code", {"accountId": acc["id"]})
        gw.ok("verify-code", {"accountId": acc["id"], "phoneCode": emulator.do(world.last_code, phone)})
        return acc["id"]

    gina = login("+15550130001")
    ivan = login("+15550130003")
    wait_until(
        lambda: all(a["connected"] for a in gw.ok("get-accounts", {"ids": [gina, ivan]})["items"]),
        30,
        "gina and ivan connected",
    )

    # Settings of accounts, groups, tags, personas, bulk changes.
    assert {g["name"] for g in gw.ok("get-groups")["groups"]} >= {"E2E"}
    gw.ok(
        "save-groups", {"groups": [{"name": "E2E"}, {"name": "Spare", "color": "#123456"}], "replace": False}
    )
    gw.ok("save-tags", {"tags": [{"name": "e2e"}, {"name": "vip"}], "replace": False})
    assert {t["name"] for t in gw.ok("get-tags")["tags"]} >= {"e2e", "vip"}
    persona = gw.ok("save-personas", {"personas": [{"name": "Helper", "tone": "friendly"}], "replace": False})
    pid = next(p["id"] for p in persona["personas"] if p["name"] == "Helper")
    assert any(p["name"] == "Helper" for p in gw.ok("get-personas")["personas"])
    assert (
        gw.ok("update-account", {"accountId": gina, "personaId": pid, "label": "gina!"})["label"] == "gina!"
    )
    assert (
        gw.ok(
            "batch-update-accounts",
            {"accountIds": [gina, ivan], "updates": {"tags": {"mode": "add", "tags": ["vip"]}}},
        )["affected"]
        == 2
    )
    assert gw.ok("bulk-assign-group", {"accountIds": [gina, ivan], "group": "Spare"})["affected"] == 2
    assert gw.ok("bulk-assign-role", {"accountIds": [ivan], "role": "listener"})["affected"] == 1
    assert (
        gw.ok("update-account-data", {"accountId": gina, "bio": "from e2e"})["profile"]["bio"] == "from e2e"
    )
    assert users["gina"].about == "from e2e"
    assert gw.ok("sync-account-info", {"accountId": gina})["profile"]["telegramId"] == users["gina"].id
    assert gw.ok("check-account-status", {"accountId": gina})["state"] == "active"

    # QR login with 2FA, refresh, cancel.
    qr = gw.ok("qr-login-create", {"imageFormat": "svg"})
    assert qr["qrImageMime"] == "image/svg+xml"
    fresh = gw.ok("qr-login-refresh", {"sessionId": qr["sessionId"]})
    emulator.do(world.accept_login_token, users["hank"], token_of(fresh["qrUrl"]))
    pushed.wait(
        "qr-login-updated", lambda d: d["sessionId"] == qr["sessionId"] and d["state"] == "password_needed"
    )
    assert (
        gw.ok("qr-login-submit-2fa", {"sessionId": qr["sessionId"], "password": "pw-h"})["state"] == "success"
    )
    other = gw.ok("qr-login-create", {})
    assert gw.ok("qr-login-cancel", {"sessionId": other["sessionId"]})["state"] == "cancelled"

    # Proxies: a real pproxy on 127.0.0.2 in the emulator's loop.
    async def start_proxy() -> tuple[Any, int]:
        import pproxy
        from tgm_testing.procs import free_port

        port = free_port("127.0.0.2")
        handler = await pproxy.Server(f"socks5://127.0.0.2:{port}/@in").start_server(
            dict(rserver=[], verbose=lambda *a: None)
        )
        return handler, port

    handler, port = asyncio.run_coroutine_threadsafe(start_proxy(), emulator.loop).result(10)
    proxy = f"socks5://127.0.0.2:{port}"
    tested = gw.ok("test-proxy", {"type": "socks5", "host": "127.0.0.2", "port": port})
    assert tested["ok"] and tested["exitIp"] == "127.0.0.2" and tested["telegramReachable"]
    bound = gw.ok("ip-bind", {"accountId": ivan, "proxy": proxy, "country": "de"})
    assert bound["exitIp"] == "127.0.0.2" and bound["country"] == "DE"

    def ivan_ips() -> set[str]:
        return emulator.do(
            lambda: {c.ip for c in emulator.emu.server.by_user.get(users["ivan"].id, ()) if c.is_alive()}
        )

    wait_until(lambda: ivan_ips() == {"127.0.0.2"}, 30, "ivan connected through the proxy")
    assert gw.ok("ip-verify-binding", {"accountId": ivan})["isValid"] is True
    assert gw.ok("ip-get-binding", {"accountId": ivan})["binding"]["country"] == "DE"
    assert any(b["accountId"] == ivan for b in gw.ok("ip-get-all-bindings", {})["items"])
    assert gw.ok("ip-get-statistics")["byCountry"].get("DE") == 1
    assert gw.ok("ip-unbind", {"accountId": ivan})["ok"] is True
    wait_until(lambda: ivan_ips() == {"127.0.0.1"}, 30, "ivan connected directly again")
    emulator.loop.call_soon_threadsafe(handler.close)

    # Groups: search, members, leave, create.
    owner = emulator.do(world.add_user, "+15550139999", first_name="Own")
    emulator.do(world.create_channel, owner, "Gateway Testers", username="gwtesters", members=[users["judy"]])
    assert [
        c["username"] for c in gw.ok("search-groups", {"keyword": "gwtest", "accountId": gina})["items"]
    ] == ["gwtesters"]
    gw.ok("join-group", {"accountId": gina, "group": "@gwtesters"})
    members = gw.ok("get-group-members", {"accountId": gina, "group": "@gwtesters"})
    assert members["total"] == 3
    assert gw.ok("leave-group", {"accountId": gina, "group": "@gwtesters"})["wasMember"] is True
    made = gw.ok(
        "create-group", {"accountId": gina, "title": "Made Here", "members": ["@judy_x"], "kind": "channel"}
    )
    assert made["chat"]["kind"] == "channel" and made["invited"] == [users["judy"].id]
    assert gw.ok("get-created-groups", {"accountId": gina})["total"] == 1

    # Extraction: start and cancel; collected users of the first test's job.
    gw.ok("join-group", {"accountId": gina, "group": "@thousandclub"})
    job = gw.ok(
        "extract-members",
        {"accountId": gina, "group": "@thousandclub", "filters": {"skipAlreadyCollected": False}},
    )
    cancel = gw.call("cancel-extraction", {"jobId": job["jobId"]})
    assert cancel["ok"] or cancel["error"]["code"] == "CONFLICT"  # it may have finished already
    collected = gw.ok("get-collected-users", {"limit": 10, "sort": "username"})
    assert collected["total"] >= 1001 and len(collected["items"]) == 10

    # The API credential pool and the developer-site scrape.
    creds = gw.ok("get-api-credentials")
    assert creds["items"] and creds["items"][0]["apiHashMasked"].startswith("********")
    saved = gw.ok(
        "save-api-credential", {"apiId": 31337, "apiHash": "ab" * 16, "maxAccounts": 2, "name": "spare"}
    )
    assert gw.ok("test-api-credential", {"id": saved["id"]})["ok"] is True
    assert gw.ok("delete-api-credential", {"id": saved["id"]})["deleted"] is True
    run = gw.ok("credential-start-scrape", {"accountId": gina})
    done = pushed.wait("credential-scrape-updated",
                       lambda d: d["scrapeId"] == run["scrapeId"] and d["state"] in ("completed", "failed"), 60)  # fmt: skip
    assert done["state"] == "completed"
    assert gw.ok("credential-get-status", {"scrapeId": run["scrapeId"]})["apiId"] == done["apiId"]
    assert gw.ok("credential-get-all", {"accountId": gina})["total"] == 1
    manual = gw.ok("credential-start-scrape", {"accountId": ivan, "codeSource": "manual"})
    wait_until(
        lambda: gw.ok("credential-get-status", {"scrapeId": manual["scrapeId"]})["state"] == "waiting_code",
        20,
        "the scrape waiting for its code",
    )
    code = emulator.do(emulator.site.last_code, "+15550130003")
    assert (
        gw.ok("credential-submit-code", {"scrapeId": manual["scrapeId"], "code": code})["state"]
        == "completed"
    )
    third = gw.ok("credential-start-scrape", {"accountId": ivan, "codeSource": "manual"})
    assert gw.ok("credential-cancel-scrape", {"scrapeId": third["scrapeId"]})["state"] == "cancelled"

    # Logout, removal.
    assert gw.ok("logout-account", {"confirm": True, "accountId": ivan})["hasSession"] is False
    assert emulator.do(world.sessions_of, users["ivan"]) == []
    assert gw.ok("remove-account", {"confirm": True, "accountId": ivan})["affected"] == 1
    spare = gw.ok("add-account", {"phone": "+15550130009"})
    assert gw.ok("bulk-delete-accounts", {"confirm": True, "accountIds": [spare["id"]]})["affected"] == 1

    # the seed's 54 (the bot-account commands, not seed commands, are walked by the Telegram half of
    # test_tailchat_e2e.py and services/tg-session/tests/test_bots.py)
    ours = {c.NAME for c in REGISTRY.owned_by(Service.TG_SESSION) if c.SEED}
    earlier = {"get-extraction-status", "export-collected-users", "qr-login-status", "submit-2fa-password"}
    gw.ok("get-extraction-status", {"jobId": job["jobId"]})
    gw.ok("export-collected-users", {"format": "xlsx", "maxRows": 10})
    gw.ok("qr-login-status", {"sessionId": qr["sessionId"]})
    assert earlier <= gw.called | {"submit-2fa-password"}
    missing = ours - gw.called - {"submit-2fa-password"}  # exercised by the onboarding test
    assert not missing, sorted(missing)
    assert len(ours) == 54
