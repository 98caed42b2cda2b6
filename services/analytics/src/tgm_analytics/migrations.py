"""Numbered migrations of the analytics database (applied at start and by `run-migrations`)."""

from __future__ import annotations

from tgm_runtime import Migration

MIGRATIONS: list[Migration] = []
