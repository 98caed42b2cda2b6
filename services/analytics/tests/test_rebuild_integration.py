"""A restore rolls analytics back; the rebuild recounts it (issue 12, finding 2), on a real nats-server
and database: analytics in process, events published directly, tg-session faked by a runtime that
serves `get-accounts` from its own record.

Record events, back up, record more (and an `account-status-changed`), restore: the figures equal what
happened (the events after the backup counted again, once) and the account states equal tg-session's
record; `rebuild-analytics` on demand changes nothing more (idempotent by event id)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tgm_analytics.bootstrap import build
from tgm_analytics.settings import AnalyticsSettings
from tgm_contracts import Service
from tgm_contracts import sys as sysops
from tgm_contracts.commands.accounts import AccountPage, GetAccounts, GetAccountsRequest
from tgm_contracts.commands.analytics import DashboardRequest, MessageStatsRequest
from tgm_contracts.commands.analytics_rebuild import RebuildAnalyticsRequest
from tgm_contracts.events_session import AccountAdded, AccountStatusChanged, MessageReceived
from tgm_contracts.models.session import AccountView
from tgm_runtime import ServiceRuntime
from tgm_runtime.runtime import CallContext

from .conftest import RealBus, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_restore_recounts_events_after_the_backup_and_account_states(
    nats_server: Any, mongo_server: Any, tmp_path: Path
) -> None:
    bus = RealBus(nats_server, mongo_server, tmp_path, "rb")
    acc, other = f"rb-{uuid.uuid4().hex[:6]}", f"rb-{uuid.uuid4().hex[:6]}"

    now = datetime.now(UTC)
    # tg-session's own record: `acc` was banned after the backup, `other` is active.
    record = {acc: "banned", other: "active"}
    session: ServiceRuntime[Any] = ServiceRuntime(
        Service.TG_SESSION, "test", settings=bus.settings("tg-session")
    )

    @session.command(GetAccounts)
    async def get_accounts(req: GetAccountsRequest, ctx: CallContext[Any]) -> AccountPage:
        views = [
            AccountView(id=i, phone="+15550000", state=s, created_at=now, updated_at=now)
            for i, s in record.items()
        ]
        return AccountPage(items=views)

    analytics = build(AnalyticsSettings(runtime=bus.settings("analytics")))

    def received(n: int) -> MessageReceived:
        return MessageReceived(
            account_id=acc, chat_kind="private", chat_id=900 + n, sender_id=900 + n, message_id=n, date=now
        )

    async def received_count() -> int:
        stats = await analytics.app.stats.messages(MessageStatsRequest(account_id=acc))
        return stats.totals.received

    async def by_state() -> dict[str, int]:
        return (await analytics.app.stats.dashboard(DashboardRequest())).accounts.by_state

    try:
        await bus.start(session, analytics)
        await session.publish(AccountAdded(account_id=acc, phone="+15550001"))
        await session.publish(AccountAdded(account_id=other, phone="+15550002"))
        for n in range(3):
            await session.publish(received(n))
        await session.publish(AccountStatusChanged(account_id=acc, state="active", previous_state="new"))
        await eventually(lambda: _equal(received_count, 3), timeout=15)

        backup_id = f"rb-{uuid.uuid4().hex[:8]}"
        await session.request(
            sysops.Backup.subject(Service.ANALYTICS), {"backupId": backup_id}, sysops.BackupPart
        )

        for n in range(3, 5):
            await session.publish(received(n))
        await session.publish(AccountStatusChanged(account_id=acc, state="banned", previous_state="active"))
        await eventually(lambda: _equal(received_count, 5), timeout=15)

        await session.request(
            sysops.Restore.subject(Service.ANALYTICS), {"backupId": backup_id}, sysops.RestorePart
        )

        async def rebuilt() -> bool:
            status = await analytics.app.rebuild.status(None)  # type: ignore[arg-type]
            assert status.state != "failed", status
            return status.state == "completed" and status.trigger == "restore"

        await eventually(rebuilt, timeout=20)
        assert await received_count() == 5
        assert await by_state() == {"banned": 1, "active": 1}  # tg-session's record, nothing else

        # On demand: the whole stream again, nothing counted twice.
        status = await analytics.app.rebuild.start(RebuildAnalyticsRequest(wait=True))
        assert status.state == "completed" and status.accounts == 2 and status.progress == 1.0
        assert await received_count() == 5
        assert await by_state() == {"banned": 1, "active": 1}
    finally:
        await bus.close()


async def _equal(read: Any, expected: int) -> bool:
    return bool(await read() == expected)
