"""The member extraction commands: start, status, cancel, collected users, export."""

from __future__ import annotations

from tgm_contracts.commands import telegram_ops as telegram_cmd

from ..app import Runtime


def register(runtime: Runtime) -> None:
    runtime.route(telegram_cmd.ExtractMembers, lambda app: app.extractions.start)
    runtime.route(telegram_cmd.GetExtractionStatus, lambda app: app.extractions.status)
    runtime.route(telegram_cmd.CancelExtraction, lambda app: app.extractions.cancel)
    runtime.route(telegram_cmd.GetCollectedUsers, lambda app: app.extractions.collected)
    runtime.route(telegram_cmd.ExportCollectedUsers, lambda app: app.extractions.export)
