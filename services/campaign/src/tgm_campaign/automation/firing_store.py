"""The inbound path's once-only records (the conditional writes that make it exact across listener
accounts, redeliveries and replicas):

`automation_seen` {_id "<chat>|<message>", event_id, at, steps: [..], done}
    A group message is claimed by the first `message-received` event that reaches it (each listener
    account that sees the message publishes its own event, with its own id). A redelivery of the
    SAME event id finds its own claim and runs again (every step after it is idempotent); another
    listener's copy is skipped. `steps` records the once-only side effects done (match counters).
`firings` {_id "<rule>|<chat>|<message>", rule_id, chat_id, message_id, group_id, user_id, state
           (pending|fired|blocked|done), outcome, delay, not_before, done_actions, job_ids, lead_id,
           errors, at}
    One per rule and message, written once its cooldown and daily count are reserved: `fired`
    (both held; its actions then run, each recorded in `done_actions`, the last one in the same
    write that moves it to `done`), `blocked` (a reservation refused), `done` when every action
    ran. The reservations come first and are keyed by the firing, so a crash before the firing is
    written leaves reservations that the redelivery finds as its own. (`pending`, a firing opened
    before its reservations, is what earlier versions wrote; such a firing is still resumed.)
`rule_users` {_id "<rule>|<user>", rule_id, user_id, last_fired_at, last_key, first_fired_at}
    Per rule and user: the cooldown and once-per-user. Reserved by one conditional upsert: matches
    only when the cooldown has passed (or it never fired, for once-per-user), or when the holder is
    this same firing (a redelivery); otherwise the upsert collides with the existing `_id` and is
    refused. Two replicas racing: exactly one wins. It is made at the same time as the day's
    reservation, and only if the stored document is still the one the decision read, so that a
    refused day can put back what it replaced (`release_user`).
`rule_days` {_id "<rule>|<YYYY-MM-DD>", rule_id, day, count, keys}
    Per rule and local day (general.timezone): firings so far. Reserved by a conditional upsert on
    `count < limit` that pushes the firing key (`keys`: a redelivery finds its own key and is not
    counted twice), so the count never passes the limit whatever races.
`member_joins` {_id "<chat>|<user>", chat_id, user_id, joined_at}
    Recent joins, for `newMemberOnly` (expire after two days).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from .engine import RuleState

#: collection -> [(keys, options)], created by migration 3.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "automation_seen": [([("at", ASCENDING)], {"name": "ttl", "expireAfterSeconds": 7 * 86_400})],
    "firings": [
        ([("chat_id", ASCENDING), ("message_id", ASCENDING)], {"name": "message"}),
        ([("at", ASCENDING)], {"name": "ttl", "expireAfterSeconds": 30 * 86_400}),
    ],
    "rule_users": [([("rule_id", ASCENDING)], {"name": "rule"})],
    "rule_days": [
        ([("rule_id", ASCENDING)], {"name": "rule"}),
        ([("at", ASCENDING)], {"name": "ttl", "expireAfterSeconds": 40 * 86_400}),
    ],
    "member_joins": [([("joined_at", ASCENDING)], {"name": "ttl", "expireAfterSeconds": 2 * 86_400})],
}

Claim = Literal["mine", "again", "done", "taken"]


def message_key(chat_id: int | str, message_id: int | str) -> str:
    return f"{chat_id}|{message_id}"


def firing_key(rule_id: str, chat_id: int | str, message_id: int | str) -> str:
    return f"{rule_id}|{chat_id}|{message_id}"


class FiringStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.seen = db["automation_seen"]
        self.firings = db["firings"]
        self.users = db["rule_users"]
        self.days = db["rule_days"]
        self.joins = db["member_joins"]

    # --- the message claim --------------------------------------------------------------------------

    async def claim(self, chat_id: int | str, message_id: int | str, event_id: str, at: datetime) -> Claim:
        """`mine` (first claim), `again` (this event's own unfinished claim), `done` (this event's,
        finished), `taken` (another listener's event has it)."""
        key = message_key(chat_id, message_id)
        try:
            await self.seen.insert_one(
                {"_id": key, "event_id": event_id, "at": at, "steps": [], "done": False}
            )
            return "mine"
        except DuplicateKeyError:
            doc = await self.seen.find_one({"_id": key})
        if doc is None:  # expired between the two calls: claim it again
            return await self.claim(chat_id, message_id, event_id, at)
        if doc.get("event_id") != event_id:
            return "taken"
        return "done" if doc.get("done") else "again"

    async def step(self, chat_id: int, message_id: int, name: str) -> bool:
        """Mark a once-only step of the message done; True for the call that marked it."""
        result = await self.seen.update_one(
            {"_id": message_key(chat_id, message_id), "steps": {"$ne": name}}, {"$push": {"steps": name}}
        )
        return result.modified_count == 1

    async def finish(self, chat_id: int | str, message_id: int | str) -> None:
        await self.seen.update_one({"_id": message_key(chat_id, message_id)}, {"$set": {"done": True}})

    # --- rule state ------------------------------------------------------------------------------------

    async def states(self, rules: Mapping[str, str], user_id: int | str | None) -> dict[str, RuleState]:
        """Each rule's state for this user and its day (`rules`: rule id -> local day)."""
        day_ids = [f"{r}|{day}" for r, day in rules.items()]
        reads = [self.days.find({"_id": {"$in": day_ids}}, {"keys": 0}).to_list()]
        if user_id is not None:
            ids = [f"{r}|{user_id}" for r in rules]
            reads.append(self.users.find({"_id": {"$in": ids}}).to_list())
        found = await asyncio.gather(*reads)  # two collections, read at once
        days = {d["rule_id"]: d for d in found[0]}
        users: dict[str, dict[str, Any]] = {d["rule_id"]: d for d in found[1]} if len(found) > 1 else {}
        out = {}
        for rule_id in rules:
            u = users.get(rule_id) or {}
            out[rule_id] = RuleState(
                last_fired_at=u.get("last_fired_at"),
                today_count=int((days.get(rule_id) or {}).get("count", 0)),
                user_stored=bool(u),
                last_key=u.get("last_key"),
            )
        return out

    async def reserve_day(
        self, rule_id: str, day: str, key: str, limit: int, at: datetime, *, fresh: bool = False
    ) -> bool:
        """Count a firing in the rule's day unless that would pass `limit`; True if held (now or by
        this same key before). `fresh`: the firing was opened by this very call chain, so it cannot
        hold the day already (the look-up for its key is skipped)."""
        _id = f"{rule_id}|{day}"
        if not fresh and await self.days.find_one({"_id": _id, "keys": key}, {"_id": 1}) is not None:
            return True
        try:
            await self.days.update_one(
                {"_id": _id, "count": {"$lt": limit}, "keys": {"$ne": key}},
                {
                    "$inc": {"count": 1},
                    "$push": {"keys": key},
                    "$setOnInsert": {"rule_id": rule_id, "day": day, "at": at},
                },
                upsert=True,
            )
            return True
        except DuplicateKeyError:  # the day is full (or this key got in meanwhile)
            return await self.days.find_one({"_id": _id, "keys": key}, {"_id": 1}) is not None

    async def release_day(self, rule_id: str, day: str, key: str) -> None:
        await self.days.update_one(
            {"_id": f"{rule_id}|{day}", "keys": key}, {"$inc": {"count": -1}, "$pull": {"keys": key}}
        )

    async def reserve_user(
        self,
        rule_id: str,
        user_id: int | str,
        key: str,
        at: datetime,
        cooldown: int,
        once: bool,
        seen: RuleState | None = None,
    ) -> bool:
        """Hold the rule's cooldown (and once-per-user) for this user; True if held (now or by this
        same key before).

        `seen`: the state this firing decided on (`states`). The reservation then holds only if the
        stored cooldown is still the one read (its last key, or none), so that `release_user` can put
        back exactly what it replaced: the day's reservation is made at the same time, and a refused
        day gives this one back. Changed since the read means another firing of this rule for this
        user got in between (milliseconds): refused, as its cooldown would refuse it."""
        _id = f"{rule_id}|{user_id}"
        free: list[dict[str, Any]] = []
        if once:
            free.append({"last_key": {"$exists": False}})
        else:
            free += [
                {"last_fired_at": {"$exists": False}},
                {"last_fired_at": {"$lte": at - timedelta(seconds=cooldown)}},
            ]
        other: dict[str, Any] = {"$or": free}
        if seen is not None:
            other["last_key"] = seen.last_key if seen.last_key is not None else {"$exists": False}
        try:
            await self.users.update_one(
                {"_id": _id, "$or": [{"last_key": key}, other]},
                {
                    "$set": {"rule_id": rule_id, "user_id": user_id, "last_fired_at": at, "last_key": key},
                    "$setOnInsert": {"first_fired_at": at},
                },
                upsert=True,
            )
            return True
        except DuplicateKeyError:
            return False

    async def release_user(self, rule_id: str, user_id: int | str, key: str, seen: RuleState) -> None:
        """Give back a cooldown `reserve_user(..., seen=seen)` held for `key`: the stored state is
        put back as it was read (removed if there was none); nothing if another key holds it now."""
        _id = f"{rule_id}|{user_id}"
        if seen.last_key == key:  # held by this firing before this run: it stays held
            return
        if not seen.user_stored:
            await self.users.delete_one({"_id": _id, "last_key": key})
            return
        put: dict[str, Any] = {}
        unset: dict[str, Any] = {}
        for name, value in (("last_fired_at", seen.last_fired_at), ("last_key", seen.last_key)):
            if value is None:
                unset[name] = ""
            else:
                put[name] = value
        change: dict[str, Any] = {}
        if put:
            change["$set"] = put
        if unset:
            change["$unset"] = unset
        await self.users.update_one({"_id": _id, "last_key": key}, change)

    # --- firings -------------------------------------------------------------------------------------

    async def of_message(self, chat_id: int | str, message_id: int | str) -> dict[str, dict[str, Any]]:
        """The firings already recorded for a message, by rule id."""
        docs = await self.firings.find({"chat_id": chat_id, "message_id": message_id}).to_list()
        return {d["rule_id"]: d for d in docs}

    async def open(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Record a `pending` firing (or answer the one already there)."""
        return (await self.open_new(doc))[0]

    async def open_new(self, doc: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Record a `pending` firing: (the firing, True) when this call created it, else (the one
        already there, False)."""
        try:
            await self.firings.insert_one(dict(doc))
            return dict(doc), True
        except DuplicateKeyError:
            found = await self.firings.find_one({"_id": doc["_id"]})
            return (found if found is not None else dict(doc)), False

    async def move(
        self,
        key: str,
        from_states: Sequence[str],
        fields: Mapping[str, Any],
        base: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Set fields when the firing is in one of `from_states`; the document after, or None.

        A conditional `update_one`, not `findAndModify` (which the embedded database answers by
        scanning the collection: 15 ms and growing with the firings): the document after is `base`
        (what the caller read) with `fields` set when given, else read back."""
        result = await self.firings.update_one(
            {"_id": key, "state": {"$in": list(from_states)}}, {"$set": dict(fields)}
        )
        if result.matched_count == 0:
            return None
        if base is not None:
            return {**base, **fields}
        return await self.get(key)

    async def done(self, key: str, fields: Mapping[str, Any], index: int | None) -> bool:
        """Move a `fired` firing to `done` with `fields`, recording action `index` as run in the
        same write (the last action's record and the firing's end are one operation); False when
        it was not `fired` (a concurrent copy of the event finished it)."""
        update: dict[str, Any] = {"$set": {**fields, "state": "done"}}
        if index is not None:
            update["$addToSet"] = {"done_actions": index}
        result = await self.firings.update_one({"_id": key, "state": "fired"}, update)
        return result.matched_count == 1

    async def action_done(self, key: str, index: int, fields: Mapping[str, Any], error: str | None) -> None:
        """Record one action of a firing as run (with what it produced, or its error)."""
        update: dict[str, Any] = {"$addToSet": {"done_actions": index}}
        if fields:
            update["$set"] = dict(fields)
        if error is not None:
            update["$push"] = {"errors": error}
        await self.firings.update_one({"_id": key}, update)

    async def get(self, key: str) -> dict[str, Any] | None:
        return await self.firings.find_one({"_id": key})

    # --- joins ---------------------------------------------------------------------------------------

    async def joined(self, chat_id: int, user_id: int, at: datetime) -> None:
        await self.joins.update_one(
            {"_id": f"{chat_id}|{user_id}"},
            {"$max": {"joined_at": at}, "$setOnInsert": {"chat_id": chat_id, "user_id": user_id}},
            upsert=True,
        )

    async def joined_since(self, chat_id: int, user_id: int, since: datetime) -> bool:
        doc = await self.joins.find_one(
            {"_id": f"{chat_id}|{user_id}", "joined_at": {"$gte": since}}, {"_id": 1}
        )
        return doc is not None

    # --- housekeeping ----------------------------------------------------------------------------------

    async def forget_rule(self, rule_id: str) -> None:
        """A deleted rule's cooldowns and day counts."""
        await self.users.delete_many({"rule_id": rule_id})
        await self.days.delete_many({"rule_id": rule_id})

    async def fired_total(self, rule_ids: Iterable[str]) -> int:
        return await self.firings.count_documents({"rule_id": {"$in": list(rule_ids)}, "state": "done"})
