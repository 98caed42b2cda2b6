"""Pure logic of tg-session: error names, health decisions, filters, ids, parsers, leases, views."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from telethon import errors
from tgm_contracts import ErrorCode
from tgm_contracts.models.session import ExtractionFilters, GroupMemberView
from tgm_session.extraction.service import keep
from tgm_session.fleet.health import Health, category_of
from tgm_session.fleet.leases import LeaseLost, MemoryLeaseStore
from tgm_session.fleet.send import random_id_for
from tgm_session.login.qr_image import render
from tgm_session.metrics import SessionMetrics
from tgm_session.ports import PeerNotFound, ProxySpec, TelegramFailure, TelegramUnreachable
from tgm_session.telegram import convert
from tgm_session.telegram.connector import ProxyProblem, _classify, proxy_url
from tgm_session.telegram.devsite import code_from_message
from tgm_session.views import account_view

pytestmark = [pytest.mark.unit, pytest.mark.timeout(20)]

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


# --- Telegram errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "name", "seconds", "full"),
    [
        (errors.FloodWaitError(request=None, capture=30), "FLOOD_WAIT", 30, "FLOOD_WAIT_30"),
        (errors.SlowModeWaitError(request=None, capture=7), "SLOWMODE_WAIT", 7, "SLOWMODE_WAIT_7"),
        (errors.PhoneCodeInvalidError(request=None), "PHONE_CODE_INVALID", None, "PHONE_CODE_INVALID"),
        (
            errors.AuthKeyUnregisteredError(request=None),
            "AUTH_KEY_UNREGISTERED",
            None,
            "AUTH_KEY_UNREGISTERED",
        ),
        (
            errors.rpcbaseerrors.BadRequestError(None, "BRAND_NEW_ERROR", 400),
            "BRAND_NEW_ERROR",
            None,
            "BRAND_NEW_ERROR",
        ),
    ],
)
def test_telethon_errors_get_telegrams_names_back(exc, name, seconds, full) -> None:
    failure = convert.to_failure(exc, "messages.sendMessage")
    assert (failure.name, failure.seconds, failure.full) == (name, seconds, full)
    assert failure.method == "messages.sendMessage"


def test_failure_kinds() -> None:
    assert TelegramFailure("FLOOD_WAIT", seconds=3).is_flood
    assert TelegramFailure("AUTH_KEY_DUPLICATED").session_dead
    assert (
        TelegramFailure("USER_DEACTIVATED_BAN").banned
        and not TelegramFailure("USER_DEACTIVATED_BAN").session_dead
    )
    assert not TelegramFailure("PEER_FLOOD").is_flood
    assert category_of("messages.sendMessage") == "send" and category_of("channels.joinChannel") == "join"
    assert category_of("something.else") == "other"


# --- the health state machine --------------------------------------------------------------------


class FakeAccounts:
    def __init__(self, docs: dict[str, dict[str, Any]]) -> None:
        self.docs = docs

    async def get(self, ident: str) -> dict[str, Any] | None:
        doc = self.docs.get(ident)
        return dict(doc) if doc else None

    async def set(self, ident: str, fields: dict[str, Any], unset: list[str] | None = None) -> dict[str, Any]:
        self.docs[ident].update(fields)
        return dict(self.docs[ident])


class FakeRepos:
    def __init__(self, docs: dict[str, dict[str, Any]]) -> None:
        self.accounts = FakeAccounts(docs)


def health(state: str = "active") -> tuple[Health, FakeRepos, list[Any], list[str]]:
    repos = FakeRepos({"a1": {"_id": "a1", "phone": "+15550000001", "state": state}})
    published: list[Any] = []
    terminal: list[str] = []

    async def publish(event: Any) -> None:
        published.append(event)

    async def on_terminal(account_id: str) -> None:
        terminal.append(account_id)

    h = Health(repos, publish, SessionMetrics(), "r1", on_terminal=on_terminal, clock=lambda: NOW)  # type: ignore[arg-type]
    return h, repos, published, terminal


async def test_flood_wait_is_data_not_a_sleep() -> None:
    h, repos, published, _ = health()
    err = await h.failure(
        "a1", TelegramFailure("FLOOD_WAIT", seconds=30, method="messages.sendMessage"), job_id="j1"
    )
    assert (
        err.code is ErrorCode.FLOOD_WAIT
        and err.retry_after == 30
        and err.details["telegramError"] == "FLOOD_WAIT_30"
    )
    doc = repos.accounts.docs["a1"]
    assert doc["state"] == "flood_wait" and doc["flood_wait_until"] == NOW + timedelta(seconds=30)
    assert doc["flood_waits"]["send"] == NOW + timedelta(seconds=30)
    names = [type(e).__name__ for e in published]
    assert names == ["FloodWaitRecorded", "AccountStatusChanged"]
    assert published[0].job_id == "j1" and published[0].category == "send"
    assert h.flood_remaining(doc, "send") == 30 and h.flood_remaining(doc, "join") == 0
    # Once the wait passed, the account is active again.
    h.clock = lambda: NOW + timedelta(seconds=31)
    recovered = await h.recover(doc)
    assert recovered["state"] == "active"


@pytest.mark.parametrize(
    ("error", "state", "code"),
    [
        ("AUTH_KEY_UNREGISTERED", "unauthorized", ErrorCode.TELEGRAM_ERROR),
        ("SESSION_REVOKED", "unauthorized", ErrorCode.TELEGRAM_ERROR),
        ("USER_DEACTIVATED_BAN", "banned", ErrorCode.TELEGRAM_ERROR),
        ("FROZEN_METHOD_INVALID", "frozen", ErrorCode.TELEGRAM_ERROR),
        ("PEER_FLOOD", "peer_flood", ErrorCode.TELEGRAM_ERROR),
        ("USER_PRIVACY_RESTRICTED", "active", ErrorCode.TELEGRAM_ERROR),
    ],
)
async def test_errors_settle_the_health_state(error: str, state: str, code: ErrorCode) -> None:
    h, repos, published, terminal = health()
    err = await h.failure("a1", TelegramFailure(error, method="messages.sendMessage"))
    assert err.code is code and err.details["telegramError"] == error
    assert repos.accounts.docs["a1"]["state"] == state
    assert terminal == (["a1"] if state in ("unauthorized", "banned") else [])
    if state != "active":
        assert published[-1].state.value == state and published[-1].reason == error
    if state == "peer_flood":
        assert repos.accounts.docs["a1"]["cooldown_until"] == NOW + timedelta(hours=24)


async def test_network_and_peer_errors() -> None:
    h, repos, _, _ = health()
    err = await h.failure("a1", TelegramUnreachable("boom", "proxy"))
    assert err.code is ErrorCode.UNAVAILABLE and repos.accounts.docs["a1"]["state"] == "proxy_error"
    err = await h.failure("a1", PeerNotFound("no @x"))
    assert err.code is ErrorCode.NOT_FOUND


# --- extraction filters ----------------------------------------------------------------------------


def member(**kw: Any) -> GroupMemberView:
    return GroupMemberView(user_id=kw.pop("user_id", 1), **kw)


def test_extraction_filters() -> None:
    f = ExtractionFilters()
    assert keep(member(), f, NOW)
    assert not keep(member(is_bot=True), f, NOW)
    assert not keep(member(is_deleted=True), f, NOW)
    assert keep(member(is_bot=True), ExtractionFilters(exclude_bots=False), NOW)
    assert not keep(member(role="admin"), ExtractionFilters(exclude_admins=True), NOW)
    assert not keep(member(), ExtractionFilters(require_username=True), NOW)
    assert keep(member(username="x_user"), ExtractionFilters(require_username=True), NOW)
    active = ExtractionFilters(active_within_days=7)
    assert keep(member(presence="recently"), active, NOW) and keep(member(presence="last_week"), active, NOW)
    assert not keep(member(presence="last_month"), active, NOW) and not keep(
        member(presence="hidden"), active, NOW
    )
    assert keep(member(presence="long_ago", last_online_at=NOW - timedelta(days=2)), active, NOW)
    assert not keep(member(presence="recently", last_online_at=NOW - timedelta(days=9)), active, NOW)
    assert not keep(member(presence="recently"), ExtractionFilters(online_only=True), NOW)
    assert not keep(member(), ExtractionFilters(premium_only=True), NOW)


# --- ids, parsers, images --------------------------------------------------------------------------


def test_random_id_is_stable_per_job_and_account() -> None:
    a = random_id_for("acc_1", "job-1")
    assert a == random_id_for("acc_1", "job-1") and a != 0
    assert a != random_id_for("acc_1", "job-2") and a != random_id_for("acc_2", "job-1")
    assert -(2**63) <= a < 2**63


def test_code_from_the_service_message() -> None:
    text = (
        "Web login code. Dear Sam, we received a request from your account to log in on my.telegram.org. "
        "This is your login code:\nAbC12dEf3Gh\n\nDo not give this code to anyone"
    )
    assert code_from_message(text) == "AbC12dEf3Gh"
    assert code_from_message("Login code: 12345. Do not give this code") == "12345"
    assert code_from_message("hello there") is None


def test_media_reference_round_trip() -> None:
    from telethon.tl import types

    photo = types.Photo(id=123, access_hash=-456, file_reference=b"\x01\x02", date=NOW, sizes=[], dc_id=2)
    msg = types.Message(
        id=1, peer_id=types.PeerUser(1), date=NOW, message="", media=types.MessageMediaPhoto(photo=photo)
    )
    ref = convert.media_ref(msg)
    assert ref and ref.startswith("tgm:")
    media = convert.input_media(ref)
    assert isinstance(media, types.InputMediaPhoto)
    assert (media.id.id, media.id.access_hash, media.id.file_reference) == (123, -456, b"\x01\x02")
    with pytest.raises(ValueError):
        convert.input_media("tgm:AAAA")
    assert isinstance(convert.external_media("https://x/y.jpg", "auto"), types.InputMediaPhotoExternal)
    assert isinstance(convert.external_media("https://x/y.pdf", "auto"), types.InputMediaDocumentExternal)


def test_presence_mapping() -> None:
    from telethon.tl import types

    assert convert.presence(types.UserStatusOnline(expires=NOW))[0] == "online"
    now = datetime.now(UTC)
    assert convert.presence(types.UserStatusOffline(was_online=now - timedelta(days=1)))[0] == "recently"
    assert convert.presence(types.UserStatusOffline(was_online=now - timedelta(days=20)))[0] == "last_month"
    assert convert.presence(types.UserStatusLastWeek())[0] == "last_week"
    assert convert.presence(None)[0] == "hidden" and convert.presence(None, bot=True)[0] == "unknown"


def test_qr_images() -> None:
    png, mime = render("tg://login?token=abc", "png", 256)
    raw = base64.b64decode(png)
    assert mime == "image/png" and raw[:8] == b"\x89PNG\r\n\x1a\n"
    svg, mime = render("tg://login?token=abc", "svg")
    assert mime == "image/svg+xml" and b"<svg" in base64.b64decode(svg)


def test_proxy_urls_and_error_kinds() -> None:
    p = ProxySpec("socks5", "10.0.0.1", 1080, "us er", "p@ss:word")
    assert proxy_url(p) == "socks5://us%20er:p%40ss%3Aword@10.0.0.1:1080"
    assert _classify(TimeoutError()).kind == "timeout"
    assert _classify(ConnectionRefusedError(111, "refused")).kind == "connect"
    assert _classify(Exception("SOCKS5 authentication failed")).kind == "auth"
    assert isinstance(_classify(Exception("garbage reply")), ProxyProblem)
    assert "p@ss" not in repr(p)


# --- leases ----------------------------------------------------------------------------------------


async def test_lease_semantics() -> None:
    store = MemoryLeaseStore()
    mine = await store.claim("acct.a", "r1")
    assert mine is not None and await store.claim("acct.a", "r2") is None
    await store.renew(mine)
    store.expire("acct.a")  # the holder died: the TTL ran out
    theirs = await store.claim("acct.a", "r2")
    assert theirs is not None
    with pytest.raises(LeaseLost):
        await store.renew(mine)
    await store.release(mine)  # a stale release does not delete the new holder's key
    assert await store.holder("acct.a") == "r2"
    assert await store.adopt("acct.a", "r1") is None
    again = await store.adopt("acct.a", "r2")
    assert again is not None and await store.snapshot("acct") == {"acct.a": "r2"}


# --- views -----------------------------------------------------------------------------------------


def test_account_view_reports_the_live_holder() -> None:
    doc = {"_id": "a1", "phone": "+15550000001", "state": "active", "connected": True, "holder": "r1",
           "session_enc": "enc:v1:x:y", "created_at": NOW, "updated_at": NOW}  # fmt: skip
    assert account_view(doc, holder="r1").connected is True
    stale = account_view(doc, holder=None)  # r1 died; its lease expired
    assert stale.connected is False and stale.holder is None
    moved = account_view(doc, holder="r2")  # r2 took over and has not written yet
    assert moved.connected is False and moved.holder == "r2"
    assert account_view(doc, holder="r1").has_session is True
