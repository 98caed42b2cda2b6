"""The gateway's use cases, built once the database is there (bootstrap.py) and reached by handlers
and edges as `runtime.app` / `ctx.app`."""

from __future__ import annotations

from dataclasses import dataclass

from tgm_runtime import CallContext, ServiceRuntime

from .channels.service import TailchatCallbacks
from .dispatch import CommandDeadline, Dispatcher
from .exports.service import ExportDownloads
from .keys.service import ApiKeys
from .system.backups import Backups
from .system.sections import SettingsSections
from .system.service import Fleet
from .uploads.service import Uploads


@dataclass(frozen=True)
class GatewayApp:
    #: Who is calling: API keys and their roles.
    keys: ApiKeys
    #: A catalogue command from any edge to its owner's subject.
    dispatcher: Dispatcher
    #: The deadline of commands whose contract names none (follows the `general` settings section).
    deadline: CommandDeadline
    #: The settings document, section by section at its owner.
    sections: SettingsSections
    #: Info, initial state, shutdown and migrations across every service.
    fleet: Fleet
    #: Backups and restores of every service's database.
    backups: Backups
    #: Downloads of exports too large for one reply (the `tgm_exports` object store).
    exports: ExportDownloads
    #: Files too large for one NATS message, streamed into the `tgm_uploads` object store.
    uploads: Uploads
    #: Callbacks of chat channels (Tailchat), handed to the channel's service with their URL token.
    channels: TailchatCallbacks


Ctx = CallContext[GatewayApp]
Runtime = ServiceRuntime[GatewayApp]
