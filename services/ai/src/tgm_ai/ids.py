"""Identifiers and timestamps of the records the ai service stores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def now() -> datetime:
    """UTC now at millisecond precision: what MongoDB stores, so values read back compare equal."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"
