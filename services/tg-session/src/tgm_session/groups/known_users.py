"""What the fleet knows of Telegram users without asking Telegram (`describe-users`): the members
its extractions collected (`collected_users`: first and last name, username) and the peers its
accounts saw (`peers`: username and the name a client shows).

Why here: campaign renders `{first_name}` for people who never wrote to us but whom an extraction
found in a group; campaign and tg-session share only contracts, so it asks this read instead of
reading our collections. Stored data only: a Telegram call per rendered message would spend the
accounts' request budget (and `resolve-peer` is rate-limited hard by Telegram).

Reads go through each domain's repository (`repos.collected`, `repos.peers`), on the indexes
`store.create_indexes` makes for them (migration 4): by user id, and peers by username (kept in
lower case). Extraction rows keep Telegram's case, so a username is matched there in any case, which
scans; campaign remembers what it learns, so it asks once per user. Per user the newest extraction
row wins (it has the split names), else the most recently seen peer row; groups and channels are
not users; phones are never answered (templates have no use for them).
"""

from __future__ import annotations

import re
from typing import Any

from tgm_contracts.rpc_session import DescribeUsersRequest, KnownUser, KnownUsers

from ..store import Doc, Repos

NEWEST = -1  # descending (the database's sort order)


def _names_of(usernames: list[str]) -> list[str]:
    """Usernames without `@`, lower case (how peers rows keep them; Telegram's are case-insensitive)."""
    return list(dict.fromkeys(name.lstrip("@").lower() for name in usernames if name.lstrip("@")))


def _any_case(names: list[str]) -> list[Doc]:
    """Extraction rows keep Telegram's case: match each name whole, in any case."""
    return [{"username": {"$regex": f"^{re.escape(n)}$", "$options": "i"}} for n in names]


async def describe_users(repos: Repos, req: DescribeUsersRequest) -> KnownUsers:
    ids = [i for i in dict.fromkeys(req.user_ids) if i > 0]
    names = _names_of(req.usernames)
    wanted_names = set(names)
    found: dict[Any, KnownUser] = {}  # user id (or username when the row has no id) -> the best row

    def key(user_id: int | None, username: str | None) -> Any:
        return user_id if user_id is not None else ("@", (username or "").lower())

    if ids or names:
        ors: list[Doc] = []
        if ids:
            ors.append({"user_id": {"$in": ids}})
        ors += _any_case(names)
        rows = await repos.collected.find(
            {"$or": ors} if len(ors) > 1 else ors[0],
            sort=[("collected_at", NEWEST)],
            limit=2000,
            projection={"user_id": 1, "username": 1, "first_name": 1, "last_name": 1},
        )
        for row in rows:
            k = key(row.get("user_id"), row.get("username"))
            if k in found:
                continue
            full = " ".join(p for p in (row.get("first_name"), row.get("last_name")) if p) or None
            found[k] = KnownUser(
                user_id=row.get("user_id"),
                username=(row.get("username") or "").lower() or None,
                first_name=row.get("first_name"),
                last_name=row.get("last_name"),
                full_name=full,
                source="extraction",
            )
        known_ids = {u.user_id for u in found.values() if u.user_id is not None}
        known_names = {u.username for u in found.values() if u.username}
        rest_ids = [i for i in ids if i not in known_ids]
        rest_names = [n for n in names if n not in known_names]
        ors = []
        if rest_ids:
            ors.append({"peer_id": {"$in": rest_ids}})
        if rest_names:
            ors.append({"username": {"$in": rest_names}})
        if ors:
            peers = await repos.peers.find(
                {"$or": ors} if len(ors) > 1 else ors[0],
                sort=[("seen_at", NEWEST)],
                limit=2000,
                projection={"peer_id": 1, "username": 1, "name": 1},
            )
            for row in peers:
                pid = row.get("peer_id")
                if not isinstance(pid, int) or pid <= 0:
                    continue  # a group or channel (marked ids are negative), not a user
                user_id = pid
                k = key(user_id, row.get("username"))
                if k in found:
                    continue
                found[k] = KnownUser(
                    user_id=user_id,
                    username=row.get("username") or None,
                    full_name=row.get("name") or None,
                    source="peers",
                )
    users = [
        u
        for u in found.values()
        if (u.user_id in ids) or (u.username is not None and u.username in wanted_names)
    ]
    return KnownUsers(users=users)
