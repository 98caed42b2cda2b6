"""The account states a rebuild re-reads from tg-session, against events folded around it (issue 12):
tg-session's record replaces the projection unless a change newer than the question came first; an
older event replayed or redelivered after it cannot undo it; a newer one still wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tgm_contracts.commands import analytics as A
from tgm_contracts.events_session import AccountStatusChanged
from tgm_contracts.models.session import AccountState
from tgm_runtime.testing import RuntimeClient

from .conftest import ok, publish

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]


def changed(account: str, state: AccountState, at: datetime) -> AccountStatusChanged:
    return AccountStatusChanged(account_id=account, state=state, previous_state=AccountState.NEW, state_at=at)


async def test_recorded_state_against_events_before_and_after_the_question(client: RuntimeClient) -> None:
    facts = client.runtime.app.rebuild.facts
    asked = datetime.now(UTC)
    before, after = asked - timedelta(seconds=5), asked + timedelta(seconds=5)
    # a1: a newer change was folded before the record is written: it stays.
    await publish(client, changed("a1", AccountState.BANNED, after))
    # a2, a3: older projected states that the record replaces.
    await publish(
        client, changed("a2", AccountState.ACTIVE, before), changed("a3", AccountState.ACTIVE, before)
    )
    for account in ("a1", "a2", "a3"):
        await facts.account_as_recorded(account, "flood_wait", None, asked)
    await facts.account_as_recorded("a4", "active", 42, asked)  # one analytics never heard of
    await facts.accounts_gone(["a1", "a2", "a3", "a4"], asked)
    # After the record: an older event (a replay, a redelivery) changes nothing; a newer one wins.
    await publish(
        client, changed("a2", AccountState.ACTIVE, before), changed("a3", AccountState.DISCONNECTED, after)
    )
    figures: dict[str, Any] = (await ok(client, A.GetDashboardStats))["accounts"]
    assert figures["byState"] == {"banned": 1, "flood_wait": 1, "disconnected": 1, "active": 1}
    assert 42 in await facts.fleet_users()
