"""The API credential commands: the credential pool and the developer-site scrape."""

from __future__ import annotations

from tgm_contracts.base import Page
from tgm_contracts.commands import accounts as accounts_cmd
from tgm_contracts.commands import telegram_ops as telegram_cmd
from tgm_contracts.models.session import ApiCredentialView, CredentialScrapeView

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    @runtime.command(telegram_cmd.SaveApiCredential)
    async def save_api_credential(req: telegram_cmd.SaveApiCredentialRequest, ctx: Ctx) -> ApiCredentialView:
        return await ctx.app.credentials.save(req)

    @runtime.command(telegram_cmd.GetApiCredentials)
    async def get_api_credentials(
        req: telegram_cmd.GetApiCredentialsRequest, ctx: Ctx
    ) -> telegram_cmd.ApiCredentialList:
        return await ctx.app.credentials.list(req)

    @runtime.command(telegram_cmd.DeleteApiCredential)
    async def delete_api_credential(
        req: telegram_cmd.DeleteApiCredentialRequest, ctx: Ctx
    ) -> telegram_cmd.DeleteApiCredentialResult:
        return await ctx.app.credentials.delete(req)

    @runtime.command(telegram_cmd.TestApiCredential)
    async def test_api_credential(
        req: telegram_cmd.ApiCredentialTestRequest, ctx: Ctx
    ) -> telegram_cmd.ApiCredentialTest:
        return await ctx.app.credentials.test(req)

    @runtime.command(accounts_cmd.CredentialStartScrape)
    async def credential_start_scrape(
        req: accounts_cmd.CredentialStartScrapeRequest, ctx: Ctx
    ) -> CredentialScrapeView:
        return await ctx.app.scrapes.start(req)

    @runtime.command(accounts_cmd.CredentialSubmitCode)
    async def credential_submit_code(
        req: accounts_cmd.CredentialSubmitCodeRequest, ctx: Ctx
    ) -> CredentialScrapeView:
        return await ctx.app.scrapes.submit_code(req)

    @runtime.command(accounts_cmd.CredentialGetStatus)
    async def credential_get_status(req: accounts_cmd.CredentialScrapeRef, ctx: Ctx) -> CredentialScrapeView:
        return await ctx.app.scrapes.status(req)

    @runtime.command(accounts_cmd.CredentialGetAll)
    async def credential_get_all(
        req: accounts_cmd.CredentialGetAllRequest, ctx: Ctx
    ) -> Page[CredentialScrapeView]:
        return await ctx.app.scrapes.all(req)

    @runtime.command(accounts_cmd.CredentialCancelScrape)
    async def credential_cancel_scrape(
        req: accounts_cmd.CredentialScrapeRef, ctx: Ctx
    ) -> CredentialScrapeView:
        return await ctx.app.scrapes.cancel(req)
