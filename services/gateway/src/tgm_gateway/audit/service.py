"""The audit trail's use cases: record a call (in memory, at once) and write what was recorded in
batches, so a command pays a list append, not a database write.

*What is audited (decided here):* every command whose least role is operator or admin (the ones that
change something, run something or reveal a secret's use), every refusal of any command (FORBIDDEN,
RATE_LIMITED), and every change to the API keys. Reads a viewer may run (`get-*`, stats) are not: at
the rates a console polls they would bury the changes, and they change nothing. An entry names the
key (id, name, role), the command, its outcome (`OK` or the error code), the request id, the time and
how long it took; never the payload, so no secret can reach it. Each entry is also a log line on the
`tgm.audit` logger, so it ships with the other logs.

A gateway killed between a call and the next flush (at most `flush_seconds`) loses those entries; a
full buffer (`MAX_BUFFERED`, the database being down) drops the oldest and counts them
(`tgm_gateway_audit_dropped_total`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from tgm_contracts import ErrorCode, Role

from ..keys.service import Principal
from .store import AuditStore

log = logging.getLogger("tgm.audit")

#: Refusals that are audited whatever the command's role.
REFUSALS = {ErrorCode.FORBIDDEN.value, ErrorCode.RATE_LIMITED.value}


#: Entries kept in memory while the database cannot take them, and entries a write takes at most.
MAX_BUFFERED = 10_000
BATCH = 500


class AuditLog:
    def __init__(self, registry: CollectorRegistry, retention_days: int = 90) -> None:
        self.retention = timedelta(days=retention_days)
        self.store: AuditStore | None = None
        self._buffer: deque[dict[str, Any]] = deque(maxlen=MAX_BUFFERED)
        # One writer at a time: the periodic flush and a read's flush would write the same head twice.
        self._flushing = asyncio.Lock()
        self.dropped = Counter(
            "tgm_gateway_audit_dropped_total",
            "Audit entries dropped because the buffer was full (the database unreachable)",
            registry=registry,
        )
        self.written = Counter("tgm_gateway_audit_entries_total", "Audit entries written", registry=registry)

    @staticmethod
    def audited(role: Role | None, code: str) -> bool:
        return code in REFUSALS or (role is not None and role >= Role.OPERATOR)

    def record(
        self,
        principal: Principal,
        command: str,
        code: str,
        *,
        request_id: str | None = None,
        seconds: float | None = None,
        target: str | None = None,
    ) -> None:
        now = datetime.now(UTC)
        key_id, key_name, role = principal.key_id, principal.name, principal.role.label
        entry = {
            "_id": uuid.uuid4().hex,
            "at": now,
            "expire_at": now + self.retention,
            "command": command,
            "code": code,
            "key_id": key_id,
            "key_name": key_name,
            "role": role,
            "request_id": request_id,
            "ms": None if seconds is None else round(seconds * 1000, 1),
            "target": target,
        }
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped.inc()
        self._buffer.append(entry)
        log.info(
            "audit %s %s by %s (%s, %s) request %s",
            command,
            code,
            key_id or "-",
            key_name or "-",
            role or "-",
            request_id or "-",
        )

    def pending(self) -> int:
        return len(self._buffer)

    async def flush(self) -> int:
        """Write what was recorded; on a failure the entries stay for the next round."""
        if self.store is None:
            return 0
        total = 0
        async with self._flushing:
            while self._buffer:
                chunk = [self._buffer[i] for i in range(min(BATCH, len(self._buffer)))]
                await self.store.add(chunk)
                for _ in chunk:
                    self._buffer.popleft()
                total += len(chunk)
        self.written.inc(total)
        return total

    async def page(
        self, limit: int, cursor: str | None, command: str | None, key_id: str | None
    ) -> dict[str, Any]:
        """Newest first; `nextCursor` continues after the last item."""
        assert self.store is not None
        await self.flush()  # what was just done is in the answer
        docs, next_cursor = await self.store.page(limit, cursor, command, key_id)
        items = [
            {
                "id": d["_id"],
                "at": d["at"].isoformat(),
                "command": d["command"],
                "code": d["code"],
                "keyId": d.get("key_id"),
                "keyName": d.get("key_name"),
                "role": d.get("role"),
                "requestId": d.get("request_id"),
                "ms": d.get("ms"),
                "target": d.get("target"),
            }
            for d in docs
        ]
        return {"items": items, "nextCursor": next_cursor}
