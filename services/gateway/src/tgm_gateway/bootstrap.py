"""The gateway's one composition root: the runtime with its system commands (`build`), and the
FastAPI app of its edges on top of that runtime (`build_app`). Nothing is built at import."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from tgm_contracts import Service, streams
from tgm_contracts.events_system import SettingsChanged
from tgm_runtime import ServiceRuntime

from . import __version__
from .api import console, http, sse, ws
from .api.body import BodyLimits
from .app import GatewayApp, Runtime
from .audit import handlers as audit_handlers
from .audit.service import AuditLog
from .audit.store import AuditStore
from .channels import handlers as channels_handlers
from .channels.service import TailchatCallbacks
from .dispatch import CommandDeadline, Dispatcher
from .exports import handlers as exports_handlers
from .exports.service import ExportDownloads
from .exports.store import ExportObjects
from .keys import handlers as keys_handlers
from .keys.cache import KeyCache
from .keys.limiter import FailedAuthLimiter, SharedKeyRate
from .keys.service import ApiKeys
from .keys.store import KeyStore, count_active_keys
from .migrations import MIGRATIONS
from .presence import Presence
from .settings import GatewaySettings
from .system import handlers as system_handlers
from .system.backups import Backups
from .system.sections import SettingsSections
from .system.service import Fleet
from .system.store import BackupStore
from .uploads import handlers as uploads_handlers
from .uploads.service import Uploads
from .uploads.store import UploadObjects

log = logging.getLogger("tgm.gateway")


def build(settings: GatewaySettings | None = None) -> Runtime:
    settings = settings or GatewaySettings()
    runtime: Runtime = ServiceRuntime(
        Service.GATEWAY,
        __version__,
        migrations=MIGRATIONS,
        settings=settings.runtime,
        counts=count_active_keys,
    )
    # Built once per process, not per start: the dispatcher's metrics live in the runtime's registry.
    deadline = CommandDeadline(settings.command_timeout_seconds)
    dispatcher = Dispatcher(
        lambda: runtime.nc,
        SharedKeyRate(
            settings.key_rate_per_second,
            settings.key_rate_burst,
            lambda: runtime.key_value(streams.KEY_RATE),
        ),
        lambda: deadline.seconds,
        runtime.registry,
        AuditLog(runtime.registry, retention_days=settings.audit_retention_days),
        Presence(lambda: runtime.nc, settings.fanout_window_seconds),
        bus_auth=runtime.bus_auth,
    )
    runtime.every(settings.presence_seconds, dispatcher.presence.refresh, "presence")
    # The trail is written in batches, and what is left when the gateway stops is written then.
    runtime.every(settings.audit_flush_seconds, dispatcher.audit.flush, "audit-flush")

    # Per process, like the dispatcher: a restart of the runtime does not forgive an address.
    failures = FailedAuthLimiter(settings.failed_auth_per_second, settings.failed_auth_burst)

    async def make_app() -> GatewayApp:
        dispatcher.audit.store = AuditStore(runtime.db)
        sections = SettingsSections(runtime, settings)
        return GatewayApp(
            keys=ApiKeys(
                KeyStore(runtime.db),
                KeyCache(
                    settings.key_cache_seconds, settings.key_miss_cache_seconds, settings.key_cache_entries
                ),
                failures,
            ),
            dispatcher=dispatcher,
            deadline=deadline,
            sections=sections,
            fleet=Fleet(runtime, sections, settings),
            backups=Backups(runtime, BackupStore(runtime.db), runtime.settings.data_dir),
            exports=ExportDownloads(ExportObjects(runtime.object_store), settings.export_max_bytes),
            uploads=Uploads(UploadObjects(runtime.object_store), settings.upload_max_bytes),
            channels=TailchatCallbacks(runtime.call, settings.command_timeout_seconds),
        )

    async def recover() -> None:
        app = runtime.app
        await app.backups.recover_interrupted()
        await app.deadline.refresh(runtime.settings_store)

    async def on_start(rt: ServiceRuntime) -> None:
        await recover()

        # Every gateway replica follows settings changes, whichever replica saved them.
        async def changed(msg: Any) -> None:
            runtime.app.sections.forget()
            if json.loads(msg.data).get("section") == "general":
                await deadline.refresh(runtime.settings_store)

        await runtime.nc.subscribe(SettingsChanged.SUBJECT, cb=changed)

    async def on_restore(rt: ServiceRuntime) -> None:
        runtime.app.keys.forget_cached()
        runtime.app.sections.forget()
        await recover()

    async def on_stop(rt: ServiceRuntime) -> None:
        try:
            await dispatcher.audit.flush()
        except Exception:  # the database went first: say what is lost
            log.warning("audit: %d entries not written at stop", dispatcher.audit.pending())

    runtime.provide(make_app)
    runtime.on_start(on_start)
    runtime.on_stop(on_stop)
    runtime.on_restore(on_restore)
    system_handlers.register(runtime)
    return runtime


def build_app(runtime: Runtime, settings: GatewaySettings | None = None) -> FastAPI:
    """The HTTP, IPC, WebSocket and SSE edges; serving it starts and stops the runtime."""
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        if settings.admin_key_file is not None:
            await runtime.app.keys.from_file(settings.admin_key_file)
        elif settings.bootstrap_admin_key:
            await _first_admin_key(runtime)
        yield
        await runtime.stop()

    limits = BodyLimits(settings.max_body_bytes, settings.max_json_depth)
    api = http.create_api(runtime, lifespan, limits)
    sse.register(api, runtime, limits)
    keys_handlers.register(api, runtime, limits)
    audit_handlers.register(api, runtime)
    exports_handlers.register(api, runtime)
    uploads_handlers.register(api, runtime)
    callback_limits = BodyLimits(
        min(settings.max_body_bytes, settings.callback_max_body_bytes), settings.max_json_depth
    )
    channels_handlers.register(api, runtime, callback_limits)
    ws.register(api, runtime, limits, settings.ws_key_check_seconds)
    console.register(api)  # last: its catch-all must not shadow an API route
    return api


async def _first_admin_key(runtime: Runtime) -> None:
    key = await runtime.app.keys.bootstrap(runtime.settings.data_dir)
    if not key:
        return
    path = Path(runtime.settings.data_dir) / "admin.key"
    # Shown once on a terminal, on purpose: this is how the operator learns the first key.
    # When output goes to a log file (under tgm-stack), only the file's path is written;
    # the supervisor reads the file and shows the key on its own console.
    if sys.stdout.isatty():
        print(f"TG-Matrix admin key (shown once, also in {path}): {key}", flush=True)
    else:
        log.info("first admin key created and written to %s (mode 0600)", path)
