"""The embedded stack's nats-server trusts no one (issue 13, finding 7): it runs with the users and
permissions of tgm_contracts.bus, so a client without credentials cannot connect, and a service user
cannot read `_INBOX.>` nor another service's inbox nor call a command it is not granted. Real
nats-server; no services (the stand-in children are not needed for the bus)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats
import pytest
from tgm_contracts import bus

pytestmark = pytest.mark.integration


async def _connect(url: str, user: str | None = None) -> tuple[Any, asyncio.Queue[str]]:
    errors: asyncio.Queue[str] = asyncio.Queue()

    async def on_error(exc: Exception) -> None:
        await errors.put(str(exc).lower())

    nc = await nats.connect(
        url,
        error_cb=on_error,
        allow_reconnect=False,
        connect_timeout=5,
        max_reconnect_attempts=0,
        inbox_prefix=bus.inbox_prefix(user) if user and user != bus.SYS_USER else "_INBOX",
    )
    return nc, errors


async def _refused(nc: Any, errors: asyncio.Queue[str], subject: str) -> bool:
    """Subscribe to `subject`, then make a surely-refused publish: errors arrive in order, so the first
    one tells whether the subscription was refused (no waiting on a timeout)."""
    await nc.subscribe(subject)
    await nc.publish("refused.sentinel", b"x")
    await nc.flush(timeout=5)
    first = await asyncio.wait_for(errors.get(), 5)
    if "refused.sentinel" in first:
        return False
    assert subject.lower() in first, first
    assert "refused.sentinel" in await asyncio.wait_for(errors.get(), 5)
    return True


@pytest.mark.timeout(60)
async def test_the_embedded_bus_refuses_strangers_and_keeps_replies_private(make_stack) -> None:
    stack = make_stack(services=())
    await asyncio.to_thread(stack.start)
    try:
        assert stack.nats is not None
        plain = stack.nats.url
        passwords = json.loads(stack.nats_passwords_file.read_text())
        assert set(passwords) == {u.name for u in bus.USERS} | {bus.SYS_USER}
        # No credentials, a wrong password: no connection at all, so no command and no reply.
        for url in (plain, plain.replace("nats://", "nats://campaign:wrong@")):
            with pytest.raises(Exception, match=r"(?i)authorization"):
                await _connect(url)

        gateway, _ = await _connect(stack.nats_url_for("gateway"), "gateway")
        campaign, campaign_errors = await _connect(stack.nats_url_for("campaign"), "campaign")
        session, _ = await _connect(stack.nats_url_for("tg-session"), "tg-session")
        try:
            # campaign may not read every reply, nor the gateway's; it reads its own.
            assert await _refused(campaign, campaign_errors, "_INBOX.>")
            assert await _refused(campaign, campaign_errors, "_INBOX.gateway.>")
            assert not await _refused(campaign, campaign_errors, "_INBOX.campaign.>")

            # A request/reply between services works with private inboxes (the responder answers
            # into the caller's inbox), and a command campaign is not granted never arrives.
            async def answer(msg: Any) -> None:
                await msg.respond(b'{"ok":true}')

            await session.subscribe("tgm.tg-session.cmd.>", queue="tg-session", cb=answer)
            await session.flush()
            reply = await gateway.request("tgm.tg-session.cmd.delete-api-credential.v1", b"{}", timeout=5)
            assert reply.data == b'{"ok":true}'
            assert (
                await campaign.request("tgm.tg-session.cmd.get-accounts.v1", b"{}", timeout=5)
            ).data == b'{"ok":true}'  # granted: campaign's directory reads it (tgm_contracts.bus)
            with pytest.raises(Exception, match=r"(?i)timeout|no responders|permission"):
                await campaign.request("tgm.tg-session.cmd.delete-api-credential.v1", b"{}", timeout=1)
        finally:
            for nc in (gateway, campaign, session):
                await nc.close()
    finally:
        await asyncio.to_thread(stack.stop)


@pytest.mark.timeout(90)
async def test_a_service_runtime_works_under_its_own_user(make_stack) -> None:
    """A runtime connected as its service's user: it creates the streams, its durable pull consumer
    fetches events (FastStream's default `_INBOX.` reply prefix would be refused: the runtime passes its
    own), and it calls another service's granted command with a signed principal over private inboxes."""
    from tgm_contracts import Service
    from tgm_contracts.commands.accounts import GetAccounts
    from tgm_contracts.events_session import AccountAdded
    from tgm_runtime.testing import bare_runtime
    from tgm_testing.procs import wait_for_async

    stack = make_stack(services=())
    await asyncio.to_thread(stack.start)
    analytics = bare_runtime(
        Service.ANALYTICS, nats_url=stack.nats_url_for("analytics"), mongo_uri=stack.mongodb_uri, tag="bus"
    )
    session = bare_runtime(
        Service.TG_SESSION, nats_url=stack.nats_url_for("tg-session"), mongo_uri=stack.mongodb_uri, tag="bus"
    )
    # One deployment, one master key: the signature the caller makes is the one the owner checks.
    session.bus_auth = analytics.bus_auth
    heard: list[str] = []
    callers: list[str | None] = []

    @analytics.subscribe_events(AccountAdded, durable="bus_test")
    async def on_changed(evt: AccountAdded) -> None:
        heard.append(evt.event_id)

    @session.command(GetAccounts)
    async def accounts(req: Any, ctx: Any) -> Any:
        callers.append(ctx.principal)
        return {"items": [], "nextCursor": None}

    try:
        await analytics.start()
        await session.start()
        await session.publish(AccountAdded(account_id="acc_bus", phone="+15550001"))
        await wait_for_async(lambda: len(heard) == 1, timeout=30, interval=0.1, message="event consumed")
        page = await analytics.call(GetAccounts, {})
        assert page.items == [] and callers == ["service:analytics"]
    finally:
        await session.stop()
        await analytics.stop()
        await asyncio.to_thread(stack.stop)
