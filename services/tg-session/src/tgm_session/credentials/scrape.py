"""The credential scrape: read (or create) an account's api_id/api_hash on Telegram's developer site.

A run lives on the replica that started it (lease `scrape.<id>`); `credential-submit-code` and
`credential-cancel-scrape` reach it through `ScrapeControl`, addressed by the scrape id. The site's
code is read from the account's own incoming messages (`auto`: from Telegram's service account
777000, through the account's holder) or given by hand (`manual`); it is used once and never stored.
A run whose replica died cannot go on (the site session was in its memory): it is marked failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from tgm_contracts.base import Page, utcnow
from tgm_contracts.commands import accounts as accounts_cmd
from tgm_contracts.events_session import CredentialScrapeUpdated
from tgm_contracts.models.session import AccountState, CredentialScrapeView, ScrapeLogLine
from tgm_contracts.rpc_session import GetHistory, GetHistoryRequest, ScrapeControl, ScrapeControlRequest
from tgm_runtime import Conflict, DomainError, NotFound
from tgm_runtime.cursor import Keyset
from tgm_runtime.routes import answers

from ..accounts.service import Accounts
from ..capabilities import Emit
from ..fleet.connections import open_proxy, seal_proxy
from ..fleet.health import HOLDABLE
from ..fleet.leases import Lease
from ..fleet.pool import AccountPool
from ..fleet.relay import Relay
from ..settings import SessionSettings
from ..store import Doc, Repos
from ..telegram.devsite import DevSiteClient, DevSiteError, code_from_message
from ..vault import Vault
from .service import CredentialPool

log = logging.getLogger("tgm.session.scrape")

FINAL = ("completed", "failed", "cancelled")
SERVICE_USER_ID = 777000
# credential-get-all pages newest first; ties on started_at by _id (index: store.py, migration 6).
SCRAPE_ORDER = Keyset(("started_at", "_id"), descending=True)
#: What `credential-scrape-updated` tells of a scrape: its view's fields.
_UPDATED_FIELDS = set(CredentialScrapeUpdated.model_fields) & set(CredentialScrapeView.model_fields)


class _Cancelled(Exception):
    pass


class ScrapeRun:
    def __init__(self, scrape_id: str, lease: Lease) -> None:
        self.scrape_id = scrape_id
        self.lease = lease
        self.code: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[Any] | None = None
        self.subscription: Any = None

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


class Scrapes:
    def __init__(
        self,
        *,
        repos: Repos,
        vault: Vault,
        pool: AccountPool,
        accounts: Accounts,
        credentials: CredentialPool,
        relay: Relay,
        emit: Emit,
        settings: SessionSettings,
        site: Callable[[Any], DevSiteClient] | None = None,
    ) -> None:
        self.repos = repos
        self.vault = vault
        self.pool = pool
        self.accounts = accounts
        self.credentials = credentials
        self.emit = emit
        self.settings = settings
        # Held under the lease `scrape.<id>`; other replicas forward ScrapeControl, 60 s at most.
        self.held = relay.held_runs("scrape", ScrapeControl, self.control_here, timeout=60.0)
        self.site = site or (lambda proxy: DevSiteClient(settings.devsite_url, proxy))
        self.runs: dict[str, ScrapeRun] = {}

    # --- views -------------------------------------------------------------------------------------

    @staticmethod
    def view(doc: Doc) -> CredentialScrapeView:
        return CredentialScrapeView(
            scrape_id=doc["_id"],
            account_id=doc["account_id"],
            phone=doc["phone"],
            state=doc["state"],
            code_source=doc.get("code_source", "auto"),
            api_id=doc.get("api_id"),
            api_hash_masked=("********" + doc["hash_tail"]) if doc.get("hash_tail") else None,
            credential_id=doc.get("credential_id"),
            app_title=doc.get("app_title"),
            created_app=doc.get("created_app"),
            error=doc.get("error"),
            log=[ScrapeLogLine.model_validate(line) for line in (doc.get("log") or [])[-50:]],
            started_at=doc["started_at"],
            updated_at=doc.get("updated_at"),
            finished_at=doc.get("finished_at"),
        )

    async def _step(self, sid: str, message: str, *, level: str = "info", **fields: Any) -> Doc:
        doc = await self.repos.scrapes.push_log(
            sid, {"at": utcnow(), "level": level, "message": message}, fields
        )
        assert doc is not None
        if "state" in fields:
            await self.emit(CredentialScrapeUpdated(**self.view(doc).model_dump(include=_UPDATED_FIELDS)))
        return doc

    # --- commands ----------------------------------------------------------------------------------

    @answers(accounts_cmd.CredentialStartScrape)
    async def start(self, req: accounts_cmd.CredentialStartScrapeRequest) -> CredentialScrapeView:
        account = await self.accounts.find(req)
        if req.code_source == "auto" and (
            not account.get("session_enc") or AccountState(account["state"]) not in HOLDABLE
        ):
            raise Conflict(
                "codeSource auto reads the code from the account's messages: log the account in, "
                "or use codeSource manual"
            )
        running = await self.repos.scrapes.find(
            {"account_id": account["_id"], "state": {"$nin": list(FINAL)}}
        )
        for doc in running:
            if await self.held.holder(doc["_id"]) is not None:
                raise Conflict(f"a credential scrape is already running for this account ({doc['_id']})")
            await self._interrupted(doc["_id"], "interrupted")
        sid = f"cs_{uuid.uuid4().hex[:16]}"
        lease = await self.held.claim_new(sid)
        now = utcnow()
        new: Doc = {
            "_id": sid,
            "account_id": account["_id"],
            "phone": account["phone"],
            "state": "starting",
            "code_source": req.code_source,
            "app": {
                "title": req.app_title,
                "short_name": req.app_short_name,
                "platform": req.app_platform,
                "url": req.app_url or "",
                "description": req.app_description or "",
            },
            "add_to_pool": req.add_to_pool,
            "max_accounts": req.max_accounts,
            "assign_to_account": req.assign_to_account,
            "log": [{"at": now, "level": "info", "message": "started"}],
            "holder": self.held.replica_id,
            "started_at": now,
            "updated_at": now,
        }
        if req.proxy is not None:
            new["proxy_enc"], _ = seal_proxy(self.vault, req.proxy, sid)
        await self.repos.scrapes.insert(new)
        run = ScrapeRun(sid, lease)
        self.runs[sid] = run
        run.subscription = await self.held.serve(sid)
        run.task = self.held.spawn(self._run(run), sid)
        return self.view(new)

    async def _latest(
        self, req: accounts_cmd.CredentialScrapeRef | accounts_cmd.CredentialSubmitCodeRequest
    ) -> Doc:
        if req.scrape_id:
            doc = await self.repos.scrapes.get(req.scrape_id)
            if doc is None:
                raise NotFound(f"no credential scrape {req.scrape_id}")
            return doc
        account = await self.accounts.find(req)
        docs = await self.repos.scrapes.find(
            {"account_id": account["_id"]}, sort=[("started_at", -1)], limit=1
        )
        if not docs:
            raise NotFound(f"account {account['_id']} has no credential scrape")
        return docs[0]

    @answers(accounts_cmd.CredentialGetStatus)
    async def status(self, req: accounts_cmd.CredentialScrapeRef) -> CredentialScrapeView:
        return self.view(await self._orphan_check(await self._latest(req)))

    async def _orphan_check(self, doc: Doc) -> Doc:
        if doc["state"] in FINAL or doc["_id"] in self.runs:
            return doc
        if await self.held.holder(doc["_id"]) is None:
            return await self._interrupted(doc["_id"], "interrupted: start the scrape again")
        return doc

    async def _interrupted(self, sid: str, error: str) -> Doc:
        """A run whose replica stopped cannot go on: the site session was in that replica's memory."""
        return await self._step(
            sid,
            "its replica stopped; the site session is lost",
            level="error",
            state="failed",
            error=error,
            finished_at=utcnow(),
        )

    @answers(accounts_cmd.CredentialGetAll)
    async def all(self, req: accounts_cmd.CredentialGetAllRequest) -> Page[CredentialScrapeView]:
        q: Doc = {}
        if req.state:
            q["state"] = {"$in": list(req.state)}
        if req.account_id:
            q["account_id"] = req.account_id
        # A keyset page, newest first (a bad or foreign cursor is Invalid: VALIDATION_ERROR).
        docs, next_cursor = await self.repos.scrapes.newest_page(SCRAPE_ORDER, q, req.cursor, req.limit)
        total = await self.repos.scrapes.count(q)
        return Page[CredentialScrapeView](
            items=[self.view(d) for d in docs], next_cursor=next_cursor, total=total
        )

    @answers(accounts_cmd.CredentialSubmitCode)
    async def submit_code(self, req: accounts_cmd.CredentialSubmitCodeRequest) -> CredentialScrapeView:
        doc = await self._latest(req)
        control = ScrapeControlRequest(action="code", code=req.code)
        return await self._control(doc, control)

    @answers(accounts_cmd.CredentialCancelScrape)
    async def cancel(self, req: accounts_cmd.CredentialScrapeRef) -> CredentialScrapeView:
        doc = await self._latest(req)
        return await self._control(doc, ScrapeControlRequest(action="cancel"))

    async def _control(self, doc: Doc, req: ScrapeControlRequest) -> CredentialScrapeView:
        sid = doc["_id"]
        if doc["state"] in FINAL:
            raise Conflict(f"the credential scrape is already {doc['state']}")
        if sid not in self.runs:
            if await self.held.holder(sid) is None:
                doc = await self._orphan_check(doc)
                raise Conflict(f"the credential scrape is {doc['state']}: {doc.get('error')}")
            forwarded: CredentialScrapeView = await self.held.forward(sid, req)
            return forwarded
        return await self.control_here(sid, req)

    async def control_here(self, sid: str, req: ScrapeControlRequest) -> CredentialScrapeView:
        run = self.runs.get(sid)
        doc = await self.repos.scrapes.get(sid)
        if run is None or doc is None:
            raise NotFound(f"credential scrape {sid} is not running here")
        if req.action == "cancel":
            if not run.code.done():
                run.code.set_exception(_Cancelled())
            if run.task is not None:
                run.task.cancel()
                await asyncio.gather(run.task, return_exceptions=True)
            doc = await self.repos.scrapes.get(sid) or doc
            if doc["state"] not in FINAL:
                doc = await self._step(
                    sid, "cancelled by the operator", state="cancelled", finished_at=utcnow()
                )
            return self.view(doc)
        if doc["state"] != "waiting_code":
            raise Conflict(f"the scrape is {doc['state']}, not waiting for a code")
        assert req.code is not None
        if not run.code.done():
            run.code.set_result(req.code.get_secret_value())
        # Answer once the run is over, so the caller learns whether the site took the code and what
        # it read (stopping at `reading_app` answered a run that was still going, under load).
        for _ in range(600):
            doc = await self.repos.scrapes.get(sid) or doc
            if doc["state"] in FINAL:
                break
            await asyncio.sleep(0.1)
        return self.view(doc)

    async def stop(self) -> None:
        for run in list(self.runs.values()):
            run.cancel()
            with contextlib.suppress(Exception):
                await self.held.release(run.lease)

    # --- the run -----------------------------------------------------------------------------------

    async def _run(self, run: ScrapeRun) -> None:
        sid = run.scrape_id
        keepalive = self.held.keep(sid, run.lease, run.cancel)  # lost: the run ends
        doc = await self.repos.scrapes.get(sid)
        assert doc is not None
        site = self.site(
            open_proxy(self.vault, doc.get("proxy_enc"), sid)
            if doc.get("proxy_enc")
            else await self._account_proxy(doc)
        )
        try:
            await self._step(sid, "asking the developer site to send a login code")
            started = utcnow()
            random_hash = await site.send_password(doc["phone"])
            doc = await self._step(
                sid, f"code requested; waiting for it ({doc['code_source']})", state="waiting_code"
            )
            if doc["code_source"] == "auto":
                code = await self._code_from_messages(run, doc, started)
            else:
                code = await asyncio.wait_for(run.code, self.settings.scrape_code_timeout_seconds)
            await self._step(sid, "logging in with the code", state="submitting_code")
            await site.login(doc["phone"], random_hash, code)
            del code
            await self._step(sid, "logged in; reading the app", state="reading_app")
            app, form_hash = await site.app()
            created = False
            if app is None:
                spec = doc["app"]
                await self._step(sid, f"no app yet; creating {spec['title']!r}", state="creating_app")
                assert form_hash is not None
                await site.create_app(
                    form_hash,
                    title=spec["title"],
                    short_name=spec["short_name"],
                    url=spec["url"],
                    platform=spec["platform"],
                    description=spec["description"],
                )
                app, _ = await site.app()
                if app is None:
                    raise DevSiteError("the app was created but the site does not show it")
                created = True
            credential_id = await self._store(doc, app.api_id, app.api_hash)
            await self._step(
                sid,
                f"api_id {app.api_id} read" + (" (app created)" if created else ""),
                state="completed",
                api_id=app.api_id,
                hash_tail=app.api_hash[-4:],
                credential_id=credential_id,
                app_title=app.title,
                created_app=created,
                finished_at=utcnow(),
            )
        except asyncio.CancelledError:
            doc = await self.repos.scrapes.get(sid) or doc
            if doc["state"] not in FINAL:
                await self._step(sid, "stopped", level="warning", state="cancelled", finished_at=utcnow())
        except _Cancelled:
            pass
        except TimeoutError:
            await self._step(
                sid,
                "no code arrived in time",
                level="error",
                state="failed",
                error="timed out waiting for the code",
                finished_at=utcnow(),
            )
        except (DevSiteError, DomainError) as exc:
            message = exc.message if isinstance(exc, DomainError) else str(exc)
            await self._step(sid, message, level="error", state="failed", error=message, finished_at=utcnow())
        except Exception as exc:
            log.exception("credential scrape %s failed", sid)
            await self._step(
                sid,
                "internal error",
                level="error",
                state="failed",
                error=type(exc).__name__,
                finished_at=utcnow(),
            )
        finally:
            keepalive.cancel()
            await site.logout()
            await site.close()
            self.runs.pop(sid, None)
            await self.held.end(run.subscription, run.lease)

    async def _account_proxy(self, doc: Doc) -> Any:
        account = await self.repos.accounts.get(doc["account_id"])
        return open_proxy(self.vault, (account or {}).get("proxy_enc"), doc["account_id"])

    async def _code_from_messages(self, run: ScrapeRun, doc: Doc, since: Any) -> str:
        """Poll the account's chat with Telegram's service account for the site's code."""
        deadline = asyncio.get_running_loop().time() + self.settings.scrape_code_timeout_seconds
        req = GetHistoryRequest(peer=SERVICE_USER_ID, limit=5)
        not_before = since - timedelta(seconds=5)
        while asyncio.get_running_loop().time() < deadline:
            if run.code.done():  # a code given by hand wins
                return run.code.result()
            try:
                page = await self.pool.call(GetHistory, doc["account_id"], req, timeout=20)
                for msg in page.messages:
                    if msg.date >= not_before and (code := code_from_message(msg.text)):
                        return code
            except DomainError as exc:
                if exc.code.value not in ("NOT_FOUND", "UNAVAILABLE", "TIMEOUT"):
                    raise
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(run.code), 1.0)
        raise TimeoutError

    async def _store(self, doc: Doc, api_id: int, api_hash: str) -> str | None:
        credential_id = None
        if doc.get("add_to_pool", True):
            existing = await self.repos.credentials.by_api_id(api_id)
            if existing is None:
                cred = await self.credentials._create(
                    api_id,
                    api_hash,
                    name=f"scraped for {doc['phone']}",
                    source="scraped",
                    max_accounts=doc.get("max_accounts", 5),
                )
                credential_id = cred["_id"]
            else:
                await self.repos.credentials.set(
                    existing["_id"],
                    {
                        "api_hash_enc": self.vault.seal(api_hash, existing["_id"]),
                        "hash_tail": api_hash[-4:],
                        "source": "scraped",
                    },
                )
                credential_id = existing["_id"]
        if doc.get("assign_to_account", True) and credential_id is not None:
            account = await self.repos.accounts.get(doc["account_id"])
            if account is not None and account.get("api_credential_id") != credential_id:
                taken = await self.repos.credentials.take_slot(credential_id)
                if taken is None:
                    raise DomainError(
                        self._conflict(), "the scraped credential is full; raise its maxAccounts to assign it"
                    )
                await self.credentials.give_back(account.get("api_credential_id"))
                await self.repos.accounts.set(
                    account["_id"], {"api_credential_id": credential_id, "api_id": api_id}
                )
                if account.get("session_enc"):
                    await self.pool.refresh(account["_id"])
        return credential_id

    @staticmethod
    def _conflict() -> Any:
        from tgm_contracts import ErrorCode

        return ErrorCode.CONFLICT

    async def sweep(self) -> None:
        """Runs whose replica died: mark them failed (their site session is gone)."""
        for doc in await self.repos.scrapes.find({"state": {"$nin": list(FINAL)}}):
            if doc["_id"] not in self.runs:
                await self._orphan_check(doc)
