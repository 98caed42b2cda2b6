"""The 11 system commands the gateway owns, done by fan-out to every service's `sys` subjects."""

from __future__ import annotations

import asyncio
import io
import logging
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tgm_contracts import BACKEND_SERVICES, REGISTRY, ErrorCode, Service, streams, validation_details
from tgm_contracts import sys as sysops
from tgm_contracts.commands import system as cmds
from tgm_contracts.events_system import BackupProgress, SettingsChanged
from tgm_contracts.settings import SETTINGS_SECTIONS
from tgm_runtime import CallContext, DomainError, Invalid, NotFound, ServiceRuntime

from . import bus

log = logging.getLogger("tgm.gateway.system")

ALL_SERVICES: tuple[Service, ...] = (Service.GATEWAY, *BACKEND_SERVICES)
BACKUPS = "_backups"


def _owners(sections: list[str] | None) -> list[Service]:
    names = sections if sections is not None else list(SETTINGS_SECTIONS)
    return sorted({SETTINGS_SECTIONS[s][0] for s in names}, key=ALL_SERVICES.index)


def _check_sections(sections: list[str] | None) -> None:
    unknown = [s for s in sections or [] if s not in SETTINGS_SECTIONS]
    if unknown:
        raise Invalid(
            f"unknown settings section(s): {', '.join(unknown)}",
            {"known": sorted(SETTINGS_SECTIONS)},
        )


def _raise(reply: dict[str, Any], service: Service) -> None:
    err = reply.get("error") or {}
    code = ErrorCode(err.get("code", "INTERNAL"))
    raise DomainError(code, f"{service.value}: {err.get('message', 'failed')}", err.get("details"))


class SystemCommands:
    def __init__(self, rt: ServiceRuntime, data_dir: Path, window: Callable[[], float]) -> None:
        self.rt = rt
        self.data_dir = data_dir
        self.window = window
        self._jobs: set[asyncio.Task[Any]] = set()

    @property
    def nc(self) -> Any:
        return self.rt.nc

    # --- settings --------------------------------------------------------------------------------

    async def _gather_settings(self, sections: list[str] | None, request_id: str | None) -> dict[str, Any]:
        _check_sections(sections)
        owners = _owners(sections)
        replies = await bus.each(
            self.nc, sysops.SettingsGet, owners, {"sections": sections}, self.window() * 5, request_id
        )
        found: list[dict[str, Any]] = []
        unavailable: list[str] = []
        for svc, reply in replies.items():
            if reply["ok"]:
                found.extend(reply["data"]["sections"])
            elif reply["error"]["code"] in (ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT):
                unavailable.extend(
                    s
                    for s, (owner, _) in SETTINGS_SECTIONS.items()
                    if owner is svc and (sections is None or s in sections)
                )
            else:
                _raise(reply, svc)
        order = list(SETTINGS_SECTIONS)
        found.sort(key=lambda s: order.index(s["section"]))
        return {
            "settings": {s["section"]: s["values"] for s in found},
            "sections": found,
            "unavailable": unavailable,
        }

    async def get_settings(self, req: cmds.GetSettingsRequest, ctx: CallContext) -> Any:
        return await self._gather_settings(req.sections, ctx.request_id)

    async def save_settings(self, req: cmds.SaveSettingsRequest, ctx: CallContext) -> Any:
        if not req.settings:
            raise Invalid("settings must name at least one section")
        _check_sections(list(req.settings))
        # Validate every section here first, so a bad value in one section does not leave others saved.
        errors = {}
        for section, changes in req.settings.items():
            model = SETTINGS_SECTIONS[section][1]
            try:
                model.model_validate({**model().model_dump(by_alias=True), **changes})
            except ValidationError as exc:
                errors[section] = validation_details(exc)
        if errors:
            raise Invalid("invalid settings", errors)
        for section, changes in req.settings.items():
            owner = SETTINGS_SECTIONS[section][0]
            expected = (req.expected_versions or {}).get(section)
            reply = await bus.request(
                self.nc,
                sysops.SettingsSave.subject(owner),
                {"section": section, "values": changes, "expectedVersion": expected},
                bus.trace_headers(ctx.request_id),
                self.window() * 5,
            )
            if not reply["ok"]:
                _raise(reply, owner)
            saved = reply["data"]
            await self.rt.publish(
                SettingsChanged(
                    section=section,
                    version=saved["version"],
                    values=saved["values"],
                    changed_by=ctx.principal,
                )
            )
        return await self._gather_settings(None, ctx.request_id)

    async def reset_settings(self, req: cmds.ResetSettingsRequest, ctx: CallContext) -> Any:
        _check_sections(req.sections)
        replies = await bus.each(
            self.nc,
            sysops.SettingsReset,
            _owners(req.sections),
            {"sections": req.sections},
            self.window() * 5,
            ctx.request_id,
        )
        for svc, reply in replies.items():
            if not reply["ok"]:
                _raise(reply, svc)
            for s in reply["data"]["sections"]:
                await self.rt.publish(
                    SettingsChanged(
                        section=s["section"],
                        version=s["version"],
                        values=s["values"],
                        changed_by=ctx.principal,
                    )
                )
        return await self._gather_settings(None, ctx.request_id)

    # --- info ------------------------------------------------------------------------------------

    async def _services(self, request_id: str | None) -> dict[str, Any]:
        gathered = await bus.broadcast(self.nc, sysops.Info, ALL_SERVICES, {}, self.window(), request_id)
        out = {}
        for svc in ALL_SERVICES:
            replicas = sorted(gathered.replies.get(svc, []), key=lambda r: r["replicaId"])
            out[svc.value] = {
                "service": svc.value,
                "status": "up" if replicas else "down",
                "replicas": replicas,
            }
        return out

    async def get_system_info(self, req: Any, ctx: CallContext) -> Any:
        services = await self._services(ctx.request_id)
        me = await self.rt.info()
        healthy = all(
            s["status"] == "up" and all(r["health"] == "ok" for r in s["replicas"]) for s in services.values()
        )
        gateway = {
            "version": self.rt.version,
            "replicaId": self.rt.settings.replica_id,
            "uptimeSeconds": me.uptime_seconds,
            "nats": me.nats.ok,
            "database": me.database.ok,
        }
        return {"gateway": gateway, "services": services, "healthy": healthy}

    async def get_initial_state(self, req: Any, ctx: CallContext) -> Any:
        services, settings = await asyncio.gather(
            self._services(ctx.request_id), self._gather_settings(None, ctx.request_id)
        )
        counts: dict[str, int] = {}
        for s in services.values():
            if s["replicas"]:
                for k, v in s["replicas"][0].get("counts", {}).items():
                    counts[k] = v
        return {
            "settings": settings["settings"],
            "services": services,
            "counts": counts,
            "commands": len(REGISTRY),
            "role": ctx.role or "viewer",
            "generated_at": datetime.now(UTC),
        }

    # --- shutdown --------------------------------------------------------------------------------

    async def graceful_shutdown(self, req: cmds.GracefulShutdownRequest, ctx: CallContext) -> Any:
        gathered = await bus.broadcast(
            self.nc, sysops.Shutdown, BACKEND_SERVICES, {}, self.window(), ctx.request_id
        )
        acks = [
            {"service": svc.value, "replicaId": r["replicaId"]}
            for svc, replies in gathered.replies.items()
            for r in replies
        ]
        if req.include_gateway:
            asyncio.get_running_loop().call_later(0.5, self.rt.request_stop)
        return {"acknowledged": acks, "gateway_stopping": req.include_gateway}

    # --- migrations ------------------------------------------------------------------------------

    async def _migrations(self, op: type[sysops.SysOp], ctx: CallContext, timeout: float) -> Any:
        replies = await bus.each(self.nc, op, ALL_SERVICES, {}, timeout, ctx.request_id)
        services = {}
        unavailable = []
        for svc, reply in replies.items():
            if reply["ok"]:
                services[svc.value] = reply["data"]
            elif reply["error"]["code"] in (ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT):
                unavailable.append(svc.value)
            else:
                _raise(reply, svc)
        up_to_date = not unavailable and all(not s["pending"] for s in services.values())
        return {"services": services, "up_to_date": up_to_date, "unavailable": unavailable}

    async def run_migrations(self, req: Any, ctx: CallContext) -> Any:
        return await self._migrations(sysops.Migrate, ctx, 240)

    async def get_migration_status(self, req: Any, ctx: CallContext) -> Any:
        return await self._migrations(sysops.Migrations, ctx, self.window() * 5)

    # --- backups ---------------------------------------------------------------------------------

    @property
    def _col(self) -> Any:
        return self.rt.db[BACKUPS]

    def _archive_path(self, backup_id: str) -> Path:
        return self.data_dir / "backups" / f"{backup_id}.tar"

    async def backup_database(self, req: cmds.BackupDatabaseRequest, ctx: CallContext) -> Any:
        now = datetime.now(UTC)
        backup_id = (
            now.strftime("%Y%m%dT%H%M%S") + "-" + ctx.request_id[-6:]
            if ctx.request_id
            else now.strftime("%Y%m%dT%H%M%S%f")
        )
        doc: dict[str, Any] = {
            "_id": backup_id,
            "kind": "backup",
            "state": "running",
            "label": req.label,
            "started_at": now,
            "progress": 0.0,
            "services": {},
        }
        await self._col.insert_one(doc)
        return await self._run_job(backup_id, self._do_backup(backup_id), req.wait)

    async def restore_database(self, req: cmds.RestoreDatabaseRequest, ctx: CallContext) -> Any:
        source = await self._col.find_one({"_id": req.backup_id, "kind": "backup"})
        if source is None and not self._archive_path(req.backup_id).exists():
            raise NotFound(f"no backup {req.backup_id!r}")
        if source is not None and source["state"] != "completed":
            raise Invalid(f"backup {req.backup_id!r} is {source['state']}, not completed")
        restore_id = f"restore-{req.backup_id}-{datetime.now(UTC).strftime('%H%M%S%f')}"
        doc = {
            "_id": restore_id,
            "kind": "restore",
            "state": "running",
            "label": req.backup_id,
            "started_at": datetime.now(UTC),
            "progress": 0.0,
            "services": {},
            "archive": str(self._archive_path(req.backup_id)),
        }
        await self._col.insert_one(doc)
        return await self._run_job(restore_id, self._do_restore(restore_id, req.backup_id), req.wait)

    async def _run_job(self, job_id: str, work: Any, wait: bool) -> Any:
        task = asyncio.create_task(work)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        if wait:
            await asyncio.shield(task)
        return self._view(await self._col.find_one({"_id": job_id}))

    async def _progress(
        self, job_id: str, kind: str, service: Service, part: dict[str, Any], done: int
    ) -> None:
        total = len(ALL_SERVICES)
        await self._col.update_one(
            {"_id": job_id}, {"$set": {f"services.{service.value}": part, "progress": round(done / total, 3)}}
        )
        await self.rt.publish(
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
        await self._col.update_one({"_id": job_id}, {"$set": update})
        await self.rt.publish(
            BackupProgress(
                backup_id=job_id, kind=kind, state=state, progress=1.0 if not error else 0, error=error
            )
        )

    async def _do_backup(self, backup_id: str) -> None:
        try:
            done = 0
            parts: list[str] = []
            for svc in ALL_SERVICES:  # one at a time: a backup should not starve the fleet of I/O
                reply = await bus.request(
                    self.nc, sysops.Backup.subject(svc), {"backupId": backup_id}, bus.trace_headers(None), 300
                )
                if not reply["ok"]:
                    raise RuntimeError(f"{svc.value}: {reply['error']['message']}")
                done += 1
                parts.append(reply["data"]["objectName"])
                await self._progress(backup_id, "backup", svc, {"state": "completed", **reply["data"]}, done)
            archive = await self._bundle(backup_id, parts)
            await self._finish(backup_id, "backup", None, str(archive))
        except Exception as exc:
            log.warning("backup %s failed: %s", backup_id, exc)
            await self._finish(backup_id, "backup", str(exc))

    async def _bundle(self, backup_id: str, parts: list[str]) -> Path:
        store = await self.rt.object_store(streams.BACKUPS)
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
        store = await self.rt.object_store(streams.BACKUPS)
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                f = tar.extractfile(member)
                if f is not None:
                    await store.put(member.name, f.read())

    async def _do_restore(self, job_id: str, backup_id: str) -> None:
        try:
            await self._ensure_parts(backup_id)
            done = 0
            for svc in ALL_SERVICES:
                reply = await bus.request(
                    self.nc,
                    sysops.Restore.subject(svc),
                    {"backupId": backup_id},
                    bus.trace_headers(None),
                    300,
                )
                if not reply["ok"]:
                    raise RuntimeError(f"{svc.value}: {reply['error']['message']}")
                done += 1
                await self._progress(job_id, "restore", svc, {"state": "completed", **reply["data"]}, done)
            await self._finish(job_id, "restore", None)
        except Exception as exc:
            log.warning("restore %s failed: %s", job_id, exc)
            await self._finish(job_id, "restore", str(exc))

    @staticmethod
    def _view(doc: dict[str, Any] | None) -> dict[str, Any]:
        if doc is None:
            raise NotFound("no such backup")
        return {
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

    async def get_backup_status(self, req: cmds.GetBackupStatusRequest, ctx: CallContext) -> Any:
        if req.backup_id:
            return {"items": [self._view(await self._col.find_one({"_id": req.backup_id}))]}
        docs = await self._col.find({}).sort("started_at", -1).limit(req.limit).to_list()
        return {"items": [self._view(d) for d in docs]}

    async def recover_interrupted(self) -> None:
        """A job that was running when the gateway died will never finish: say so."""
        await self._col.update_many(
            {"state": "running"},
            {
                "$set": {
                    "state": "failed",
                    "error": "interrupted by a gateway restart",
                    "finished_at": datetime.now(UTC),
                }
            },
        )

    def register(self) -> None:
        rt = self.rt
        rt.command(cmds.GetSettings)(self.get_settings)
        rt.command(cmds.SaveSettings)(self.save_settings)
        rt.command(cmds.ResetSettings)(self.reset_settings)
        rt.command(cmds.GetSystemInfo)(self.get_system_info)
        rt.command(cmds.GetInitialState)(self.get_initial_state)
        rt.command(cmds.GracefulShutdown)(self.graceful_shutdown)
        rt.command(cmds.BackupDatabase)(self.backup_database)
        rt.command(cmds.RestoreDatabase)(self.restore_database)
        rt.command(cmds.GetBackupStatus)(self.get_backup_status)
        rt.command(cmds.RunMigrations)(self.run_migrations)
        rt.command(cmds.GetMigrationStatus)(self.get_migration_status)
