"""Account calls: work that needs an account's live Telegram client, declared once.

`@account_call(AcctJoinGroup)` marks the one method that does the work with the live client
(`async (self, live, req) -> response`). `AccountPool.call(AcctJoinGroup, account_id, req)` runs it
on this replica when it holds the account and forwards it to the holder otherwise; the holder serves
`tgm.acct.<id>.<name>.v<major>` from the same registry (`AccountPool.routes`), so the caller, the
local work and the served route cannot drift apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from tgm_contracts import AccountRpc

if TYPE_CHECKING:
    from .pool import LiveAccount

#: The work of one account call on this replica: the live account and the call's request.
LiveCall = Callable[["LiveAccount", Any], Awaitable[Any]]
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_MARK = "__account_call__"


def account_call(rpc: type[AccountRpc]) -> Callable[[F], F]:
    """Declare the decorated method as the one that does `rpc` with the account's live client."""

    def mark(fn: F) -> F:
        setattr(fn, _MARK, rpc)
        return fn

    return mark


class AccountCalls:
    """The registry of account calls, filled from the use cases' `@account_call` methods."""

    def __init__(self) -> None:
        self._calls: dict[type[AccountRpc], LiveCall] = {}

    def collect(self, *owners: object) -> None:
        """Register every `@account_call` method of these use cases (each call declared once)."""
        for owner in owners:
            for name, member in inspect.getmembers(type(owner), inspect.isfunction):
                rpc = getattr(member, _MARK, None)
                if rpc is None:
                    continue
                if rpc in self._calls:
                    raise ValueError(f"account call {rpc.NAME} is declared twice")
                self._calls[rpc] = getattr(owner, name)

    def of(self, rpc: type[AccountRpc]) -> LiveCall:
        try:
            return self._calls[rpc]
        except KeyError:
            raise LookupError(f"no @account_call({rpc.__name__}) was collected") from None

    def __iter__(self) -> Iterator[tuple[type[AccountRpc], LiveCall]]:
        return iter(self._calls.items())
