"""The accounts' own collections: the fleet (`accounts`), account groups, tags and personas.

An account's chat memberships are a field of its document (`MEMBER_CHATS`, a list of chat ids,
multikey-indexed): pick-accounts `memberOfChatId` is then one indexed query over `accounts`, and an
account's deletion, a backup or a restore carries its memberships with it (`membership.py`).

*Decision (issue 16, reads that do not scan):* `get-accounts` pages by keyset (`tgm_runtime.cursor`,
the sort field then `_id`, no skip), and its tallies are not recomputed per page:
- the whole fleet in creation order (the default page, every fleet screen's first read) is an ordered
  list of `(created_at, _id)` kept in memory (`CreatedOrder`), rebuilt from one projected read before
  the page when this replica inserted or deleted an account, and in the background once it is
  made old by any replica's `account-added`/`account-removed` (`changed_elsewhere`, heard on every
  replica) or `ORDER_FRESH_SECONDS` old (the page that finds it so is served from the kept list and
  asks for the read, which the replica's `accounts-refresh` job makes within a second: another
  replica's add shows a second or so after its event; no page waits for that read, 0.2-0.5 s of the
  database at 10,000 accounts on the embedded server, formerly the slowest pages of a read-all, and
  with nothing changed it is not made at all); a page is then a bisect in the list, which gives the page's first and last creation time, and
  one range read `created_at` between the two over the `created_at` index (migration 5). Both the
  embedded server and MongoDB serve it as an index range scan of the page's own documents (the
  embedded server walks an index range and fetches only those; MongoDB the same); the read is then
  ordered and cut to the page by `(created_at, _id)` here, so an account another replica added or
  removed inside the range meanwhile is shown or left out as the database has it;
- per-state tallies (`total` is their sum) come from one `$group` per filter, kept per filter: read
  again before the page when this replica wrote an account, in the background (as the creation
  order) after any replica's `account-added`/`-removed`/`-status-changed` or login event, or
  `ORDER_FRESH_SECONDS` for the whole fleet's and `FRESH_SECONDS` for a filter's (a write no event
  announces: a group, tag or persona edit on another replica);
- a filtered or otherwise sorted page is one keyset query (range after the cursor, sort, limit + 1).
  The embedded server sorts such a read itself (it pushes no limit into an index walk); MongoDB serves
  the single-field sorts from an index.
Measured on the embedded server (1,000 accounts, 51 documents a page, server CPU per read): the range
read 6.8 ms, the former `_id $in` of the 51 ids 9.5 ms (it matches every fetched document against the
51 ids again), a keyset `created_at > x` sort + limit 40 ms (it reads the whole rest of the range).
The pages read whole documents: on the embedded server a projection copies every value it keeps
(an inclusion of the view's fields made the same read 11.8 ms, an exclusion of `member_chats` 20 ms),
while on MongoDB it only saves bytes on the wire. bench/gateway has the end-to-end figures.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError
from tgm_runtime.single_flight import SingleFlight

from ..base_store import Doc, Repo

log = logging.getLogger(__name__)

#: The age after which what every change of is announced is read again in the background with no
#: change heard of (`changed_elsewhere`): the creation order (every add and removal: `account-added`,
#: `account-removed`) and the whole fleet's tallies by state (those and `account-status-changed`, the
#: login events). This only bounds an event lost on the way.
ORDER_FRESH_SECONDS = 600.0
#: The same for a filtered tally: another replica's group, tag or persona edit is not announced.
FRESH_SECONDS = 60.0
#: Most filters whose tallies are kept (least recently used forgotten first).
TALLY_FILTERS = 64
_WRITES = frozenset(
    {
        "insert_one",
        "insert_many",
        "update_one",
        "update_many",
        "replace_one",
        "delete_one",
        "delete_many",
        "find_one_and_update",
        "find_one_and_replace",
        "find_one_and_delete",
        "bulk_write",
    }
)
_MEMBERSHIP = frozenset(
    {"insert_one", "insert_many", "delete_one", "delete_many", "find_one_and_delete", "bulk_write"}
)


class _Watched:
    """The accounts collection, counting this replica's writes (every caller writes through it)."""

    def __init__(self, col: Any) -> None:
        self._col = col
        self.writes = 0  # any write begun: tallies may have changed
        self.settled = 0  # any write ended (done or failed)
        self.membership = 0  # inserts and deletes: the creation order may have changed
        self.membership_open = 0  # inserts and deletes under way

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._col, name)
        if name not in _WRITES:
            return attr
        self.writes += 1
        member = name in _MEMBERSHIP
        if member:
            self.membership += 1
            self.membership_open += 1

        async def write(*args: Any, **kwargs: Any) -> Any:
            try:
                return await attr(*args, **kwargs)
            finally:
                self.settled += 1
                if member:
                    self.membership_open -= 1

        return write

    @property
    def version(self) -> tuple[int, int]:
        """Changes with every write this replica begins and every one that ends: a read begun at
        one version has seen every write of this replica that had ended by then."""
        return self.writes, self.settled


class CreatedOrder:
    """Every account's `(created_at, _id)` in creation order, read once and kept (see the module)."""

    def __init__(self) -> None:
        self.keys: list[tuple[datetime, str]] = []
        self.read_at = 0.0
        self.membership = -1

    def young(self) -> bool:
        """Read less than ORDER_FRESH_SECONDS ago (its membership version is checked by the caller)."""
        return time.monotonic() - self.read_at < ORDER_FRESH_SECONDS

    def after(
        self, key: tuple[datetime, str] | None, count: int, descending: bool
    ) -> list[tuple[datetime, str]]:
        """The keys of up to `count` accounts after `key` (from the start without one), in page order."""
        if descending:
            end = len(self.keys) if key is None else bisect.bisect_left(self.keys, key)
            return self.keys[max(0, end - count) : end][::-1]
        start = 0 if key is None else bisect.bisect_right(self.keys, key)
        return self.keys[start : start + count]


def _created_key(doc: Doc) -> tuple[datetime, str]:
    return doc["created_at"], doc["_id"]


ACCOUNTS = "accounts"
GROUPS = "account_groups"
TAGS = "tags"
PERSONAS = "personas"
#: The account document's field of the chat ids it is known to be a member of (`membership.py`).
MEMBER_CHATS = "member_chats"


class AccountsRepo(Repo):
    name = ACCOUNTS

    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self.watched = _Watched(self.col)
        self.col = self.watched  # type: ignore[assignment]
        self._order = CreatedOrder()
        self._reads = SingleFlight()
        self._tallies: OrderedDict[str, tuple[float, tuple[int, int], dict[str, int]]] = OrderedDict()
        self._wanted: dict[Any, Callable[[], Awaitable[Any]]] = {}

    def forget(self) -> None:
        """The collection was replaced (restore-database): read everything again."""
        self._order = CreatedOrder()
        self._tallies.clear()

    def changed_elsewhere(self, membership: bool) -> None:
        """An account was added or removed (`membership`) or changed state, by any replica (its
        event): what is kept is read again in the background, by the next page that reads it."""
        if membership:
            self._order.read_at = -ORDER_FRESH_SECONDS
        for key, (_, version, counts) in self._tallies.items():
            self._tallies[key] = (-ORDER_FRESH_SECONDS, version, counts)

    def _refresh(self, key: Any, read: Callable[[], Awaitable[Any]]) -> None:
        """Ask for `read()` by the next `refresh_wanted` (once for `key` however many pages ask)."""
        self._wanted.setdefault(key, read)

    async def refresh_wanted(self) -> int:
        """Make the reads pages asked for (`_refresh`): the replica's periodic job `accounts-refresh`,
        once a second, so no page waits for them. A failure is logged; the kept value stays, and the
        next page past its age asks again. The number of reads made."""
        wanted, self._wanted = self._wanted, {}
        for key, read in wanted.items():
            try:
                await read()
            except Exception as exc:
                log.warning("reading the accounts' %s again failed: %s", key[0], exc)
        return len(wanted)

    async def _read_order(self) -> CreatedOrder:
        """Every account's creation key, kept unless this replica inserted or deleted one meanwhile
        (that one's page reads again)."""
        membership, read_at = self.watched.membership, time.monotonic()
        # An insert or delete under way when the read begins may not be in it: such a read answers
        # its caller but is not kept (the next page reads again).
        clean = self.watched.membership_open == 0
        docs = await self.col.find({}, {"created_at": 1}).to_list(None)
        order = CreatedOrder()
        order.keys = sorted((d["created_at"], d["_id"]) for d in docs)
        order.read_at, order.membership = read_at, membership
        if clean and membership == self.watched.membership:
            self._order = order
        return order

    async def in_created_order(
        self,
        after: tuple[datetime, str] | None,
        count: int,
        descending: bool,
        projection: Doc | None = None,
    ) -> list[Doc]:
        """Up to `count` accounts of the whole fleet after `after` in (created_at, _id) order: one
        index range read of the page's creation times (see the module)."""
        order = self._order
        if order.membership != self.watched.membership:  # this replica added or removed one
            order = await self._reads.run(("order", self.watched.membership), self._read_order)
        elif not order.young():
            self._refresh(("order",), self._read_order)
        keys = order.after(after, count, descending)
        if not keys:
            return []
        ends = sorted((keys[0][0], keys[-1][0]))
        # Callers asking for the same range while its read is under way share that read (a console
        # polling the first page from several screens; bench/gateway's 16 clients): keyed by this
        # replica's write version too (`_Watched.version`), so a read begun before one of its own
        # writes ended is never handed to a caller that came after that write. The documents are shared, read-only; the list is each its own.
        found = list(
            await self._reads.run(
                (ends[0], ends[1], repr(projection), self.watched.version),
                lambda: self.col.find({"created_at": {"$gte": ends[0], "$lte": ends[1]}}, projection).to_list(
                    None
                ),
            )
        )
        # The range holds the page and, at its ends, accounts created in the same millisecond as the
        # first or last one: the keyset order places those before or after the page.
        found.sort(key=_created_key, reverse=descending)
        if after is not None:
            found = [d for d in found if (_created_key(d) < after if descending else _created_key(d) > after)]
        return found[:count]

    async def tally(self, query: Doc) -> dict[str, int]:
        """Accounts per state over `query`: read again before answering when this replica wrote an
        account since, in the background when old (see the module)."""
        key = repr(sorted(query.items()))
        kept = self._tallies.get(key)
        # The version, not the count of writes begun: a read begun while a write was under way may
        # not see it, so it is not the answer once that write has ended (clean-clone run, session 19:
        # the page right after add-account tallied 0 accounts).
        version = self.watched.version
        if kept is not None and kept[1] == version:
            self._tallies.move_to_end(key)
            if time.monotonic() - kept[0] >= (FRESH_SECONDS if query else ORDER_FRESH_SECONDS):
                self._refresh(("tallies", key), lambda: self._read_tally(key, query))
            return kept[2]
        return await self._reads.run(("tallies", key, version), lambda: self._read_tally(key, query))

    async def _read_tally(self, key: str, query: Doc) -> dict[str, int]:
        read_at, version = time.monotonic(), self.watched.version
        counts = await self.count_by_state(query)
        kept = self._tallies.get(key)
        if kept is None or kept[1] <= version:  # not over a read begun after a later write
            self._tallies[key] = (read_at, version, counts)
            self._tallies.move_to_end(key)
            while len(self._tallies) > TALLY_FILTERS:
                self._tallies.popitem(last=False)
        return counts

    async def by_phone(self, phone: str) -> Doc | None:
        return await self.col.find_one({"phone": phone})

    async def add(self, doc: Doc) -> Doc | None:
        """Insert; None if the phone is already in the fleet."""
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            return None
        return doc

    async def add_member_chat(self, ident: str, chat_id: int) -> bool:
        """Records that the account is in `chat_id`; False when there is no such account."""
        res = await self.col.update_one({"_id": ident}, {"$addToSet": {MEMBER_CHATS: chat_id}})
        return res.matched_count > 0

    async def add_member_chats(self, ident: str, chat_ids: list[int]) -> None:
        """Records that the account is in each of `chat_ids` (one write)."""
        await self.col.update_one({"_id": ident}, {"$addToSet": {MEMBER_CHATS: {"$each": chat_ids}}})

    async def drop_member_chat(self, ident: str, chat_id: int) -> None:
        await self.col.update_one({"_id": ident}, {"$pull": {MEMBER_CHATS: chat_id}})

    async def members_of(self, chat_id: int) -> list[str]:
        """The ids of the accounts known to be in `chat_id`."""
        docs = await self.find({MEMBER_CHATS: chat_id}, projection={"_id": 1})
        return [d["_id"] for d in docs]

    async def count_by_state(self, query: Doc) -> dict[str, int]:
        rows = await self.col.aggregate([{"$match": query}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}])
        return {r["_id"]: r["n"] async for r in rows}

    async def eligible_ids(self, states: list[str]) -> list[str]:
        docs = await self.find(
            {"session_enc": {"$ne": None}, "state": {"$in": states}}, projection={"_id": 1}
        )
        return [d["_id"] for d in docs]

    async def set_if_holder(self, ident: str, holder: str, fields: Doc) -> bool:
        res = await self.col.update_one({"_id": ident, "holder": holder}, {"$set": fields})
        return res.matched_count > 0

    async def count_by_proxy(self, host: str, port: int, exclude: str | None = None) -> int:
        query: Doc = {"proxy_view.host": host, "proxy_view.port": port}
        if exclude:
            query["_id"] = {"$ne": exclude}
        return await self.col.count_documents(query)  # a decision (sharing): exact, never cached

    async def bump_daily(self, ident: str, day: str) -> None:
        await self.col.update_one({"_id": ident, "daily_send_day": day}, {"$inc": {"daily_send_count": 1}})
        await self.col.update_one(
            {"_id": ident, "daily_send_day": {"$ne": day}},
            {"$set": {"daily_send_day": day, "daily_send_count": 1}},
        )

    async def update_ids(self, idents: list[str], update: Doc) -> None:
        await self.col.update_many({"_id": {"$in": idents}}, update)

    async def move_group(self, name: str, to: str | None) -> None:
        """The accounts of group `name` move to group `to` (a rename, or None when it is deleted)."""
        await self.col.update_many({"group": name}, {"$set": {"group": to}})

    async def rename_tag(self, old: str, new: str) -> None:
        await self.col.update_many({"tags": old}, {"$addToSet": {"tags": new}})
        await self.col.update_many({"tags": old}, {"$pull": {"tags": old}})

    async def keep_only_tags(self, keep: list[str]) -> None:
        await self.col.update_many({}, {"$pull": {"tags": {"$nin": keep}}})

    async def clear_personas(self, persona_ids: list[str]) -> None:
        await self.col.update_many({"persona_id": {"$in": persona_ids}}, {"$set": {"persona_id": None}})

    async def set_api_id(self, credential_id: str, api_id: int) -> None:
        """The accounts using a credential follow its new api_id."""
        await self.col.update_many({"api_credential_id": credential_id}, {"$set": {"api_id": api_id}})

    async def count_by(self, field: str) -> dict[str, int]:
        """Accounts per value of `field` (group, persona), leaving out those with none."""
        rows = await self.col.aggregate([{"$group": {"_id": f"${field}", "n": {"$sum": 1}}}])
        return {r["_id"]: r["n"] async for r in rows if r["_id"] is not None}

    async def count_tags(self) -> dict[str, int]:
        rows = await self.col.aggregate(
            [{"$unwind": "$tags"}, {"$group": {"_id": "$tags", "n": {"$sum": 1}}}]
        )
        return {r["_id"]: r["n"] async for r in rows}


class NamedRepo(Repo):
    """Records the operator names (account groups, personas): a name is unique case-insensitively,
    kept as `key`."""

    async def by_key(self, key: str) -> Doc | None:
        return await self.col.find_one({"key": key})

    async def current(self, ident: str | None, key: str) -> Doc | None:
        """The record a save refers to: by its id when given, else by its name."""
        return await self.get(ident) if ident else await self.by_key(key)

    async def clash(self, key: str, ident: str) -> Doc | None:
        """Another record already named so."""
        return await self.col.find_one({"key": key, "_id": {"$ne": ident}})

    async def delete_ids(self, idents: list[str]) -> None:
        await self.col.delete_many({"_id": {"$in": idents}})


class GroupsRepo(NamedRepo):
    name = GROUPS


class TagsRepo(Repo):
    name = TAGS

    async def save(self, name: str, color: str | None) -> None:
        await self.col.update_one({"_id": name}, {"$set": {"color": color}}, upsert=True)

    async def delete_except(self, keep: list[str]) -> None:
        await self.col.delete_many({"_id": {"$nin": keep}})


class PersonasRepo(NamedRepo):
    name = PERSONAS
