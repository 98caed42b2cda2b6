"""`describe-users` over a real database (`groups/known_users.py`): an extraction's row wins with the
split names (the newest one), a peer row gives the shown name when no extraction knows the user,
usernames match in any case, phones are never answered, and unknown users are simply absent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from tgm_contracts.rpc_session import DescribeUsersRequest
from tgm_session.groups.known_users import describe_users
from tgm_session.store import Repos, create_indexes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


async def test_describe_users_prefers_the_newest_extraction_then_peers(mongo_server: Any) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = f"known_{uuid.uuid4().hex[:8]}"
    try:
        db = client[name]
        await create_indexes(db)
        repos = Repos(db)
        now = datetime.now(UTC)
        collected = db["collected_users"]
        await collected.insert_many(
            [
                {
                    "_id": "x1:7",
                    "user_id": 7,
                    "username": "Nadia_N",
                    "first_name": "Nadia",
                    "last_name": "Old",
                    "phone": "15550001",
                    "collected_at": now - timedelta(days=1),
                },
                {
                    "_id": "x2:7",
                    "user_id": 7,
                    "username": "Nadia_N",
                    "first_name": "Nadia",
                    "last_name": "Ng",
                    "phone": "15550001",
                    "collected_at": now,
                },
            ]
        )
        await db["peers"].insert_many(
            [
                {
                    "_id": "a1:8",
                    "account_id": "a1",
                    "peer_id": 8,
                    "access_hash": 1,
                    "username": "omar_o",
                    "phone": "15550002",
                    "name": "Omar O",
                    "seen_at": now,
                },
                {
                    "_id": "a1:-1009",
                    "account_id": "a1",
                    "peer_id": -1009,
                    "access_hash": 2,
                    "username": "room",
                    "phone": None,
                    "name": "Room",
                    "seen_at": now,
                },
            ]
        )
        by_id = await describe_users(repos, DescribeUsersRequest(user_ids=[7, 8, 9]))
        users = {u.user_id: u for u in by_id.users}
        assert set(users) == {7, 8}
        assert (users[7].first_name, users[7].last_name, users[7].full_name) == ("Nadia", "Ng", "Nadia Ng")
        assert users[7].source == "extraction" and users[7].username == "nadia_n"
        assert users[8].source == "peers" and users[8].full_name == "Omar O" and users[8].first_name is None
        by_name = await describe_users(
            repos, DescribeUsersRequest(usernames=["NADIA_N", "@omar_o", "room", "x"])
        )
        assert sorted(u.user_id for u in by_name.users if u.user_id) == [7, 8]  # a channel is not a user
        assert all("phone" not in u.model_dump() for u in by_name.users)
    finally:
        await client.drop_database(name)
        await client.close()
