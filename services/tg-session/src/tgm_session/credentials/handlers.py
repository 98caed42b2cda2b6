"""The API credential commands: the credential pool and the developer-site scrape."""

from __future__ import annotations

from tgm_contracts.commands import accounts as accounts_cmd
from tgm_contracts.commands import telegram_ops as telegram_cmd

from ..app import Runtime


def register(runtime: Runtime) -> None:
    runtime.route(telegram_cmd.SaveApiCredential, lambda app: app.credentials.save)
    runtime.route(telegram_cmd.GetApiCredentials, lambda app: app.credentials.list)
    runtime.route(telegram_cmd.DeleteApiCredential, lambda app: app.credentials.delete)
    runtime.route(telegram_cmd.TestApiCredential, lambda app: app.credentials.test)
    runtime.route(accounts_cmd.CredentialStartScrape, lambda app: app.scrapes.start)
    runtime.route(accounts_cmd.CredentialSubmitCode, lambda app: app.scrapes.submit_code)
    runtime.route(accounts_cmd.CredentialGetStatus, lambda app: app.scrapes.status)
    runtime.route(accounts_cmd.CredentialGetAll, lambda app: app.scrapes.all)
    runtime.route(accounts_cmd.CredentialCancelScrape, lambda app: app.scrapes.cancel)
