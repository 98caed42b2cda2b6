"""Numbered migrations of the campaign database (applied at start and by `run-migrations`)."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from tgm_runtime import Migration

from .ads import store as ad_store
from .automation import store as automation_store
from .collaboration import store as collaboration_store
from .crm import store as lead_store
from .crm import tracking_store
from .messaging import history_store
from .messaging import store as job_store


async def _messaging_indexes(db: AsyncDatabase[Any]) -> None:
    for keys, options in job_store.INDEXES:
        await db["jobs"].create_index(keys, **options)
    for collection, indexes in history_store.INDEXES.items():
        for keys, options in indexes:
            await db[collection].create_index(keys, **options)
    await db["templates"].create_index([("name_key", ASCENDING)], unique=True, name="name_unique")
    await db["templates"].create_index([("category", ASCENDING)], name="category")
    await db["blocked"].create_index([("user_id", ASCENDING)], name="user", sparse=True)


async def _crm_indexes(db: AsyncDatabase[Any]) -> None:
    for keys, options in lead_store.INDEXES:
        await db["leads"].create_index(keys, **options)
    for collection, indexes in tracking_store.INDEXES.items():
        for keys, options in indexes:
            await db[collection].create_index(keys, **options)
    # delete-lead and a lead's details read its jobs
    await db["jobs"].create_index([("lead_id", ASCENDING)], name="lead", sparse=True)
    await db["groups"].create_index([("chat_id", ASCENDING)], name="chat", sparse=True)


async def _automation_indexes(db: AsyncDatabase[Any]) -> None:
    for collection, indexes in automation_store.indexes().items():
        for keys, options in indexes:
            await db[collection].create_index(keys, **options)


async def _ads_collaboration_indexes(db: AsyncDatabase[Any]) -> None:
    for collection, indexes in [*ad_store.INDEXES.items(), *collaboration_store.indexes().items()]:
        for keys, options in indexes:
            await db[collection].create_index(keys, **options)


MIGRATIONS: list[Migration] = [
    Migration(1, "messaging: jobs, history, templates and compliance indexes", _messaging_indexes),
    Migration(2, "contacts: leads (one per user), tracked users, activity; jobs by lead", _crm_indexes),
    Migration(
        3, "automation: keyword sets, monitored groups, rules, firings, campaigns", _automation_indexes
    ),
    Migration(4, "ads and collaboration: ads, roles, scripts, scenarios, runs", _ads_collaboration_indexes),
    # Migration 4's list grew after it had run on some databases (ad_replies by campaign and time,
    # ad_runs by planned time): applying the whole list again creates what is missing and leaves what
    # exists (create_index of an existing index is a no-op). A new index gets a new migration.
    Migration(
        5,
        "ads: replies by campaign and time, runs by planned time (added to 4 after it ran)",
        _ads_collaboration_indexes,
    ),
]
