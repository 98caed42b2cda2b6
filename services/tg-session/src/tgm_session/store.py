"""All the repositories of tg-session (`Repos`, what use cases are given), the indexes of the
service's database and the figures of `get-service-info`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from .accounts.store import (
    ACCOUNTS,
    GROUPS,
    MEMBER_CHATS,
    PERSONAS,
    AccountsRepo,
    GroupsRepo,
    PersonasRepo,
    TagsRepo,
)
from .base_store import Doc
from .credentials.store import CREDENTIALS, SCRAPES, CredentialsRepo, ScrapesRepo
from .extraction.store import COLLECTED, EXTRACTIONS, CollectedRepo, ExtractionsRepo
from .fleet.peer_store import PEERS
from .fleet.store import SENDS, PeersRepo, SendsRepo
from .groups.store import CREATED_GROUPS, CreatedGroupsRepo
from .login.store import CodeLoginsRepo, QrLoginsRepo
from .proxies.store import IP_CHANGES, IpChangesRepo

__all__ = ["Doc", "Repos", "create_indexes", "service_counts"]


class Repos:
    """Every repository of the service, over one database (what use cases are given)."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.accounts = AccountsRepo(db)
        self.credentials = CredentialsRepo(db)
        self.groups = GroupsRepo(db)
        self.tags = TagsRepo(db)
        self.personas = PersonasRepo(db)
        self.code_logins = CodeLoginsRepo(db)
        self.qr_logins = QrLoginsRepo(db)
        self.sends = SendsRepo(db)
        self.extractions = ExtractionsRepo(db)
        self.collected = CollectedRepo(db)
        self.created_groups = CreatedGroupsRepo(db)
        self.ip_changes = IpChangesRepo(db)
        self.scrapes = ScrapesRepo(db)
        self.peers = PeersRepo(db)


async def create_indexes(db: AsyncDatabase[Any]) -> None:
    await db[ACCOUNTS].create_index("phone", unique=True)
    await db[ACCOUNTS].create_index([("state", ASCENDING), ("created_at", ASCENDING)])
    await db[ACCOUNTS].create_index("created_at")  # get-accounts: the fleet's pages in creation order
    await db[ACCOUNTS].create_index("group")
    await db[ACCOUNTS].create_index("tags")
    await db[ACCOUNTS].create_index("api_credential_id")
    await db[ACCOUNTS].create_index(MEMBER_CHATS)  # multikey: pick-accounts memberOfChatId
    await db[CREDENTIALS].create_index("api_id", unique=True)
    await db[GROUPS].create_index("key", unique=True)
    await db[PERSONAS].create_index("key", unique=True)
    await db[SENDS].create_index([("account_id", ASCENDING), ("sent_at", DESCENDING)])
    await db[SENDS].create_index(
        [("account_id", ASCENDING), ("peer_id", ASCENDING), ("message_id", ASCENDING)]
    )
    await db[EXTRACTIONS].create_index([("state", ASCENDING), ("account_id", ASCENDING)])
    await db[COLLECTED].create_index([("source_chat_id", ASCENDING), ("user_id", ASCENDING)])
    await db[COLLECTED].create_index([("job_id", ASCENDING), ("collected_at", DESCENDING)])
    # describe-users (`groups/known_users.py`): users by id, peers by username.
    await db[COLLECTED].create_index([("user_id", ASCENDING), ("collected_at", DESCENDING)])
    # get-collected-users keyset pages: (sort field, _id), read either way; a job's users by time.
    for sort in ("collected_at", "last_online_at", "username"):
        await db[COLLECTED].create_index([(sort, ASCENDING), ("_id", ASCENDING)])
    await db[COLLECTED].create_index([("job_id", ASCENDING), ("collected_at", ASCENDING), ("_id", ASCENDING)])
    await db[PEERS].create_index([("peer_id", ASCENDING), ("seen_at", DESCENDING)])
    await db[PEERS].create_index("username")
    await db[CREATED_GROUPS].create_index([("account_id", ASCENDING), ("created_at", DESCENDING)])
    await db[IP_CHANGES].create_index([("at", DESCENDING)])
    await db[SCRAPES].create_index([("account_id", ASCENDING), ("started_at", DESCENDING)])
    # Keyset pages newest first, ties by _id (get-created-groups, credential-get-all,
    # ip-get-all-bindings), unfiltered and by account.
    newest = [("created_at", DESCENDING), ("_id", DESCENDING)]
    await db[CREATED_GROUPS].create_index(newest)
    await db[CREATED_GROUPS].create_index([("account_id", ASCENDING), *newest])
    started = [("started_at", DESCENDING), ("_id", DESCENDING)]
    await db[SCRAPES].create_index(started)
    await db[SCRAPES].create_index([("account_id", ASCENDING), *started])
    await db[ACCOUNTS].create_index([("binding.bound_at", DESCENDING), ("_id", DESCENDING)])


async def service_counts(db: AsyncDatabase[Any], by_state: Mapping[str, int]) -> dict[str, int]:
    """The figures `get-service-info` shows for tg-session; the accounts' from `by_state`, the
    fleet's kept per-state tallies (`AccountsRepo.tally({})`), not two counts of the whole fleet
    (at 10,000 accounts those took the embedded database a quarter of a second, and the pages
    being read meanwhile waited behind them)."""
    return {
        "accounts": sum(by_state.values()),
        "activeAccounts": int(by_state.get("active", 0)),
        "apiCredentials": await db[CREDENTIALS].count_documents({}),
        "sends": await db[SENDS].count_documents({"state": "sent"}),
    }
