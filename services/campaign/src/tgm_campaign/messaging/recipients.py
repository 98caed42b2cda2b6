"""A recipient's facts for templates (`{first_name}`, `{last_name}`, `{full_name}`, `{username}`), from
what the product knows when the job is rendered, not only from what campaign happened to see.

Where they come from, in order:

1. campaign's users directory (`HistoryStore.users`: the senders of the messages we received, the
   users our sends reached, leads' names), read through a short cache;
2. when a fact the template uses is still missing: tg-session's `describe-users` (its member
   extractions and the peers its accounts saw: stored data, no Telegram call), by the user's id and
   username. What it answers is written into the users directory, so the next job to that user
   needs no call.

When nobody knows a fact the template needs (and it has no default) the job is not failed: the
fact may become known (an extraction, the user writing to us), so `FactsUnknown` tells the
dispatcher to hold the job (reason `missing_variable`, retried with backoff and at once when the
user writes: `replan.py`). A variable that is not a recipient fact ("{offer}") can only come from the
job, so its absence stays a permanent `template_error`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from tgm_contracts.rpc_session import DescribeUsers, DescribeUsersRequest, KnownUsers
from tgm_runtime import DomainError

from .clock import Clock, utc
from .history_store import HistoryStore
from .lookup_cache import LookupCache
from .templates import RECIPIENT_FACTS, recipient_values

log = logging.getLogger("tgm.campaign.recipients")

#: How long a user's names are reused from the directory.
USERS_TTL = 30.0
#: tg-session's answer is awaited this long (a render waits for it).
ASK_TIMEOUT = 5.0

Call = Callable[[Any, Any, float], Awaitable[Any]]


class FactsUnknown(Exception):
    """No source knows these recipient facts yet: the job waits for them (retryable)."""

    def __init__(self, names: Sequence[str], asked: bool) -> None:
        listed = ", ".join(f"{{{n}}}" for n in names)
        where = (
            "campaign's users directory and tg-session's extractions and peers"
            if asked
            else "campaign's users directory (tg-session could not be asked)"
        )
        super().__init__(
            f"no value for {listed}: nobody knows this recipient's {', '.join(names)} yet ({where}); "
            "the job waits until it is known (retried, and at once when the user writes) — give the "
            "template a default or the job a value to send without it"
        )
        self.names = list(names)


def _ids_and_names(keys: Sequence[str]) -> tuple[list[int], list[str]]:
    ids = [int(k[3:]) for k in keys if k.startswith("id:") and k[3:].isdigit()]
    names = [k[1:] for k in keys if k.startswith("@")]
    return ids, names


class RecipientFacts:
    def __init__(self, history: HistoryStore, call: Call, clock: Clock, lookups: LookupCache) -> None:
        self.history = history
        self._call = call
        self.clock = clock
        self.lookups = lookups

    async def known(self, keys: Sequence[str]) -> dict[str, str | None]:
        """The facts campaign's users directory has for the user of `keys` (cached a moment)."""
        users = await self.lookups.get("users", list(keys), self.history.users, USERS_TTL, self.clock())
        return _facts(next((users[k] for k in keys if k in users), None))

    async def fresh(self, keys: Sequence[str], needed: Sequence[str]) -> tuple[dict[str, str | None], bool]:
        """The facts for a render that lacks `needed`: the users directory read again (the cached
        answer may predate the user's first message), then tg-session for what is still missing.
        Also whether tg-session answered (or was not needed)."""
        users = await self.history.users(keys)
        values = _facts(next((users[k] for k in keys if k in users), None))
        if all(values.get(n) for n in needed):
            return values, True
        fleet = await self.ask_fleet(keys)
        return fill(values, fleet or {}), fleet is not None

    async def ask_fleet(self, keys: Sequence[str]) -> dict[str, str | None] | None:
        """tg-session's facts for the user of `keys` (remembered in the users directory); None when
        tg-session could not answer."""
        ids, names = _ids_and_names(keys)
        if not ids and not names:
            return recipient_values()
        try:
            answer: KnownUsers = await self._call(
                DescribeUsers, DescribeUsersRequest(user_ids=ids, usernames=names), ASK_TIMEOUT
            )
        except DomainError as exc:
            log.warning("describe-users for a template failed (%s): %s", exc.code.value, exc.message)
            return None
        best = next(iter(answer.users), None)
        if best is None:
            return recipient_values()
        if best.user_id is not None:
            await self.history.remember_user(
                best.user_id,
                username=best.username,
                first_name=best.first_name,
                last_name=best.last_name,
                at=utc(self.clock()),
            )
        values = recipient_values(best.first_name, best.last_name, best.username)
        if values.get("full_name") is None:
            values["full_name"] = best.full_name
        return values


def _facts(user: Mapping[str, Any] | None) -> dict[str, str | None]:
    if user is None:
        return recipient_values()
    return recipient_values(user.get("first_name"), user.get("last_name"), user.get("username"))


def missing_facts(names: Sequence[str]) -> bool:
    """Every missing variable is a recipient fact (so another source may know it)."""
    return bool(names) and all(n in RECIPIENT_FACTS for n in names)


def fill(values: Mapping[str, str | None], more: Mapping[str, str | None]) -> dict[str, str | None]:
    """`values` with the gaps filled from `more`."""
    return {k: values.get(k) or more.get(k) for k in {*values, *more}}
