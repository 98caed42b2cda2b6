"""Proxies with a real local proxy server (pproxy on 127.0.0.2): Telethon's MTProto traffic to the
emulator goes through it (the emulator sees 127.0.0.2, not 127.0.0.1), exit IPs, bad credentials,
dead proxies, binding limits and verification of the live connection."""

from __future__ import annotations

import pytest
from tgm_contracts.commands import accounts as A

from .conftest import until
from .paging import TIMES, in_order, read_all, refuses_bad_cursors

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PHONE = "+15550100001"


def ips_of(emulator, user) -> set[str]:
    return {c.ip for c in emulator.server.by_user.get(user.id, set()) if c.is_alive()}


@pytest.mark.parametrize("kind", ["socks5", "socks4", "http"])
async def test_test_proxy_kinds(replicas, proxies, devsite, kind):
    user = None if kind == "socks4" else "u1"
    proxy = await proxies(kind, user, "pw1" if user else None)
    r = await replicas(ip_echo_url=f"{devsite.url}/ip")
    res = await r.ok(A.TestProxy, {**_fields(proxy)})
    assert res["ok"] is True, res
    assert res["latencyMs"] > 0 and res["telegramReachable"] is True and res["telegramLatencyMs"] > 0
    assert res["exitIp"] == "127.0.0.2"
    assert res["proxy"]["hasPassword"] is bool(user)
    assert "pw1" not in str(res)


def _fields(proxy, password=...) -> dict:
    out = {"type": proxy.kind, "host": proxy.host, "port": proxy.port}
    if proxy.user:
        out["username"] = proxy.user
        out["password"] = proxy.password if password is ... else password
    return out


async def test_test_proxy_failures(replicas, proxies):
    proxy = await proxies("socks5", "u1", "pw1")
    r = await replicas()
    bad = await r.ok(A.TestProxy, {**_fields(proxy, "wrong"), "timeoutSeconds": 5})
    # pproxy hangs up on bad credentials instead of answering RFC 1929's failure status, so the
    # client can only tell that the SOCKS exchange broke off.
    assert bad["ok"] is False and bad["errorKind"] in ("auth", "protocol"), bad["error"]
    assert bad["latencyMs"] is None and bad["telegramReachable"] is None
    proxy.close()
    dead = await r.ok(A.TestProxy, {**_fields(proxy), "timeoutSeconds": 5})
    assert dead["ok"] is False and dead["errorKind"] == "connect", dead
    url = await r.ok(A.TestProxy, {"type": "socks5", "host": "127.0.0.1", "port": 1, "timeoutSeconds": 3})
    assert url["ok"] is False


async def test_account_traffic_goes_through_its_proxy(
    replicas, proxies, devsite, tg_emulator, tg_world, events
):
    u = tg_world.add_user(PHONE, first_name="Pia")
    proxy = await proxies("socks5", "u1", "pw1")
    r = await replicas(ip_echo_url=f"{devsite.url}/ip")
    acc = await r.ok(A.AddAccount, {"phone": PHONE, "proxy": proxy.url()})
    assert acc["proxy"]["host"] == "127.0.0.2" and acc["proxy"]["hasPassword"] is True
    await r.ok(A.LoginAccount, {"accountId": acc["id"]})
    await r.ok(A.VerifyCode, {"accountId": acc["id"], "phoneCode": tg_world.last_code(PHONE)})
    await until(lambda: r.svc.pool.get(acc["id"]) is not None and r.svc.pool.get(acc["id"]).connected)
    # Every connection the emulator has for this account comes from the proxy's address.
    assert ips_of(tg_emulator, u) == {"127.0.0.2"}
    check = await r.ok(A.IpVerifyBinding, {"accountId": acc["id"]})
    assert check["isValid"] is True and check["proxyReachable"] is True and check["exitIp"] == "127.0.0.2"
    # Unbind: the account reconnects directly.
    await r.ok(A.IpUnbind, {"accountId": acc["id"], "reason": "test"})
    await until(lambda: ips_of(tg_emulator, u) == {"127.0.0.1"})
    # Bind again (tested first), with country and kind.
    binding = await r.ok(
        A.IpBind, {"accountId": acc["id"], "proxy": proxy.url(), "country": "tw", "kind": "residential"}
    )
    assert (
        binding["exitIp"] == "127.0.0.2" and binding["country"] == "TW" and binding["kind"] == "residential"
    )
    await until(lambda: ips_of(tg_emulator, u) == {"127.0.0.2"})
    got = await r.ok(A.IpGetBinding, {"accountId": acc["id"]})
    assert got["binding"]["proxy"]["port"] == proxy.port
    page = await r.ok(A.IpGetAllBindings, {"country": "TW"})
    assert [b["accountId"] for b in page["items"]] == [acc["id"]]
    stats = await r.ok(A.IpGetStatistics, {})
    assert stats["totalBindings"] == 1 and stats["byCountry"] == {"TW": 1} and stats["totalChanges"] >= 2
    assert stats["proxies"][0]["accounts"] == 1
    # A dead proxy is refused at bind time.
    dead = await proxies("socks5")
    dead.close()
    refused = await r.call(A.IpBind, {"accountId": acc["id"], "proxy": dead.url()})
    assert refused["error"]["code"] == "CONFLICT"


async def test_max_accounts_per_proxy(replicas, proxies):
    proxy = await proxies("socks5")
    r = await replicas()
    await r.rt.settings_store.save("telegram", {"maxAccountsPerProxy": 1}, None)
    await r.ok(A.AddAccount, {"phone": "+15550100001", "proxy": proxy.url()})
    second = await r.call(A.AddAccount, {"phone": "+15550100002", "proxy": proxy.url()})
    assert second["error"]["code"] == "CONFLICT" and "maxAccountsPerProxy" in second["error"]["message"]


async def test_ip_get_all_bindings_pages_by_keyset_latest_bound_first(replicas):
    """Seven bound accounts, ties on bound_at, three a page: each once, the latest bound first, ties
    by account id; an unbound account is not listed; a cursor it did not give out is a VALIDATION_ERROR."""
    r = await replicas()
    ids = [(await r.ok(A.AddAccount, {"phone": f"+1555020{n:04d}"}))["id"] for n in range(8)]
    proxy = {"type": "socks5", "host": "127.0.0.2", "port": 1080, "country": "TW", "kind": "residential"}
    rows = []
    for acc_id, t in zip(ids, TIMES, strict=False):  # the eighth account stays unbound
        binding = {"bound_at": t, "is_active": True, "country": "TW", "kind": "residential"}
        await r.db["accounts"].update_one(
            {"_id": acc_id}, {"$set": {"proxy_view": proxy, "binding": binding}}
        )
        rows.append({"_id": acc_id, "bound_at": t})
    expected = in_order(rows, lambda d: d["bound_at"], desc=True)
    assert await read_all(r, A.IpGetAllBindings, {}, "accountId") == expected
    assert await read_all(r, A.IpGetAllBindings, {"country": "TW"}, "accountId", limit=2) == expected
    await refuses_bad_cursors(r, A.IpGetAllBindings, {})
