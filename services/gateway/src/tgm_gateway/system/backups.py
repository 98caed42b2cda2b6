"""Backups and restores of the whole fleet: every service dumps (or replaces) its own database, one
service at a time, and the gateway bundles the parts into one archive on its host.

A job runs in the background (`runtime.spawn`); `wait` makes the command answer when it is over.
Its record (system/store.py) carries the progress that `get-backup-status` reports.
"""

from __future__ import annotations

import asyncio
import io
import logging
import tarfile
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tgm_contracts import Service, streams
from tgm_contracts import sys as sysops
from tgm_contracts.commands import system as system_cmd
from tgm_contracts.events_system import BackupProgress
from tgm_runtime import Invalid, NotFound
from tgm_runtime.routes import answers

from .. import bus
from ..bus import ALL_SERVICES
from .store import BackupStore

if TYPE_CHECKING:
    from ..app import Runtime

log = logging.getLogger("tgm.gateway.system")

#: How long one service may take to dump or restore its part.
PART_TIMEOUT_SECONDS = 300


def _view(doc: dict[str, Any] | None) -> system_cmd.BackupStatus:
    if doc is None:
        raise NotFound("no such backup")
    return system_cmd.BackupStatus.model_validate(
        {
            "backup_id": doc["_id"],
            "kind": doc["kind"],
            "state": doc["state"],
            "label": doc.get("label"),
            "started_at": doc["started_at"],
            "finished_at": doc.get("finished_at"),
            "progress": doc.get("progress", 0.0),
            "services": doc.get("services", {}),
            "archive": doc.get("archive"),
            "error": doc.get("error"),
        }
    )


class Backups:
    def __init__(self, runtime: Runtime, store: BackupStore, data_dir: Path) -> None:
        self.runtime = runtime
        self.store = store
        self.data_dir = data_dir

    def _archive_path(self, backup_id: str) -> Path:
        return self.data_dir / "backups" / f"{backup_id}.tar"

    async def backup(
        self, req: system_cmd.BackupDatabaseRequest, request_id: str | None
    ) -> system_cmd.BackupStatus:
        now = datetime.now(UTC)
        backup_id = (
            now.strftime("%Y%m%dT%H%M%S") + "-" + request_id[-6:]
            if request_id
            else now.strftime("%Y%m%dT%H%M%S%f")
        )
        await self.store.start(backup_id, "backup", req.label, now)
        return await self._run_job(backup_id, self._do_backup(backup_id), req.wait)

    @answers(system_cmd.RestoreDatabase)
    async def restore(self, req: system_cmd.RestoreDatabaseRequest) -> system_cmd.BackupStatus:
        source = await self.store.get_backup(req.backup_id)
        if source is None and not self._archive_path(req.backup_id).exists():
            raise NotFound(f"no backup {req.backup_id!r}")
        if source is not None and source["state"] != "completed":
            raise Invalid(f"backup {req.backup_id!r} is {source['state']}, not completed")
        restore_id = f"restore-{req.backup_id}-{datetime.now(UTC).strftime('%H%M%S%f')}"
        archive = str(self._archive_path(req.backup_id))
        await self.store.start(restore_id, "restore", req.backup_id, datetime.now(UTC), archive)
        return await self._run_job(restore_id, self._do_restore(restore_id, req.backup_id), req.wait)

    @answers(system_cmd.GetBackupStatus)
    async def status(self, req: system_cmd.GetBackupStatusRequest) -> system_cmd.BackupList:
        if req.backup_id:
            return system_cmd.BackupList(items=[_view(await self.store.get(req.backup_id))])
        return system_cmd.BackupList(items=[_view(d) for d in await self.store.latest(req.limit)])

    async def recover_interrupted(self) -> None:
        """A job that was running when the gateway died will never finish: say so."""
        await self.store.fail_running("interrupted by a gateway restart", datetime.now(UTC))

    async def _run_job(
        self, job_id: str, work: Coroutine[Any, Any, None], wait: bool
    ) -> system_cmd.BackupStatus:
        task = self.runtime.spawn(work, name=f"backup job {job_id}")
        if wait:
            # Shielded: a caller that gives up does not stop the job half-way.
            await asyncio.shield(task)
        return _view(await self.store.get(job_id))

    async def _progress(
        self, job_id: str, kind: str, service: Service, part: dict[str, Any], done: int
    ) -> None:
        total = len(ALL_SERVICES)
        await self.store.set_part(job_id, service, part, round(done / total, 3))
        await self.runtime.publish(
            BackupProgress(
                backup_id=job_id, kind=kind, state="running", progress=done / total, service=service.value
            )
        )

    async def _finish(self, job_id: str, kind: str, error: str | None, archive: str | None = None) -> None:
        state = "failed" if error else "completed"
        update: dict[str, Any] = {"state": state, "finished_at": datetime.now(UTC), "error": error}
        if not error:
            update["progress"] = 1.0
        if archive:
            update["archive"] = archive
        await self.store.update(job_id, update)
        await self.runtime.publish(
            BackupProgress(
                backup_id=job_id, kind=kind, state=state, progress=1.0 if not error else 0, error=error
            )
        )

    async def _ask_each(
        self, op: type[sysops.SysOp], job_id: str, backup_id: str, kind: str
    ) -> list[dict[str, Any]]:
        """Ask every service in turn (one at a time: a backup should not starve the fleet of I/O);
        their answers, in order."""
        parts: list[dict[str, Any]] = []
        for done, svc in enumerate(ALL_SERVICES, 1):
            reply = await bus.request(
                self.runtime.nc,
                op.subject(svc),
                {"backupId": backup_id},
                bus.trace_headers(None),
                PART_TIMEOUT_SECONDS,
            )
            if not reply["ok"]:
                raise RuntimeError(f"{svc.value}: {reply['error']['message']}")
            parts.append(reply["data"])
            await self._progress(job_id, kind, svc, {"state": "completed", **reply["data"]}, done)
        return parts

    async def _do_backup(self, backup_id: str) -> None:
        try:
            parts = await self._ask_each(sysops.Backup, backup_id, backup_id, "backup")
            archive = await self._bundle(backup_id, [p["objectName"] for p in parts])
            await self._finish(backup_id, "backup", None, str(archive))
        except Exception as exc:
            log.warning("backup %s failed: %s", backup_id, exc)
            await self._finish(backup_id, "backup", str(exc))

    async def _do_restore(self, job_id: str, backup_id: str) -> None:
        try:
            await self._ensure_parts(backup_id)
            await self._ask_each(sysops.Restore, job_id, backup_id, "restore")
            await self._finish(job_id, "restore", None)
        except Exception as exc:
            log.warning("restore %s failed: %s", job_id, exc)
            await self._finish(job_id, "restore", str(exc))

    async def _bundle(self, backup_id: str, parts: list[str]) -> Path:
        store = await self.runtime.object_store(streams.BACKUPS)
        path = self._archive_path(backup_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        with tarfile.open(tmp, "w") as tar:
            for name in parts:
                data = (await store.get(name)).data or b""
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = int(datetime.now(UTC).timestamp())
                tar.addfile(info, io.BytesIO(data))
        tmp.replace(path)
        return path

    async def _ensure_parts(self, backup_id: str) -> None:
        """If the bus lost the parts (a new NATS store), put them back from the local archive."""
        path = self._archive_path(backup_id)
        if not path.exists():
            return
        store = await self.runtime.object_store(streams.BACKUPS)
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                f = tar.extractfile(member)
                if f is not None:
                    await store.put(member.name, f.read())
