"""The edge to tg-session for a recount: its own record of every account (`get-accounts`, a page of
500 at a time), which the account-state projection is made equal to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tgm_contracts.commands.accounts import AccountPage, GetAccounts, GetAccountsRequest
from tgm_contracts.models.session import AccountView

Call = Callable[[Any, Any, float], Awaitable[Any]]

PAGE = 500
TIMEOUT_SECONDS = 10.0


class FleetRecord:
    def __init__(self, call: Call) -> None:
        self.call = call

    async def accounts(self) -> list[AccountView]:
        """Every account tg-session holds now (its restored record after a restore)."""
        out: list[AccountView] = []
        cursor: str | None = None
        while True:
            page: AccountPage = await self.call(
                GetAccounts, GetAccountsRequest(limit=PAGE, cursor=cursor), TIMEOUT_SECONDS
            )
            out.extend(page.items)
            cursor = page.next_cursor
            if not cursor:
                return out
