"""Numbered migrations of the tailchat database (applied at start and by `run-migrations`)."""

from __future__ import annotations

from tgm_runtime import Migration

from .apps import store as apps_store
from .inbound import store as inbound_store
from .messages import store as messages_store

MIGRATIONS: list[Migration] = [
    Migration(1, "apps: registered Tailchat apps", apps_store.create_indexes),
    Migration(2, "messages: the last meta of each sent message (TTL)", messages_store.create_indexes),
    Migration(3, "inbound: callback deliveries seen (TTL)", inbound_store.create_indexes),
    Migration(4, "messages: sends by idempotency key (TTL)", messages_store.create_send_indexes),
]
