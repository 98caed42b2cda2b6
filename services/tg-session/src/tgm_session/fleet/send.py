"""The send path (`tgm.acct.<id>.send.v1`) and the other account calls campaign and ai use.

Effectively once per job id: the holder records `job id -> Telegram message id` in the `sends`
collection (the job id is its primary key) before it answers, so a redelivered job is answered from
the record (`duplicate: true`) without sending. Telegram's own guard backs that up: the message's
`random_id` is derived from the account and the job id, so a send retried after a crash between
Telegram's answer and our record is refused by Telegram (`RANDOM_ID_DUPLICATE`) and then found in the
chat's history instead of being delivered twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any

from tgm_contracts import ErrorCode
from tgm_contracts.base import Ack, utcnow
from tgm_contracts.events_session import MessageSendFailed, MessageSent
from tgm_contracts.models.session import AccountState
from tgm_contracts.rpc_session import (
    GetHistory,
    GetHistoryRequest,
    HistoryPage,
    MarkRead,
    MarkReadRequest,
    ResolvedPeer,
    ResolvePeer,
    ResolvePeerRequest,
    Send,
    SendRequest,
    SendResult,
)
from tgm_runtime import Conflict, DomainError, NotFound

from ..capabilities import Emit
from ..metrics import SessionMetrics
from ..ports import PeerNotFound, SentMessage, TelegramFailure, TelegramUnreachable
from ..store import Repos
from ..views import today
from .calls import account_call
from .health import TERMINAL, Health
from .pool import AccountPool, LiveAccount


def random_id_for(account_id: str, job_id: str) -> int:
    """Telegram's random_id for a job: the same on every retry, different for every account and job."""
    digest = hashlib.sha256(f"tgm-send:{account_id}:{job_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little", signed=True) or 1


@dataclass(kw_only=True, eq=False)
class Sender:
    repos: Repos
    pool: AccountPool
    health: Health
    metrics: SessionMetrics
    emit: Emit

    def _result(self, rec: dict[str, Any], *, duplicate: bool) -> SendResult:
        return SendResult(
            account_id=rec["account_id"],
            job_id=rec["_id"],
            message_id=rec["message_id"],
            peer_id=rec["peer_id"],
            chat_kind=rec.get("chat_kind"),
            sent_at=rec["sent_at"],
            duplicate=duplicate,
            media_ref=rec.get("media_ref"),
        )

    @account_call(Send)
    async def send(self, live: LiveAccount, req: SendRequest) -> SendResult:
        # One job at a time per job id on this holder (a redelivery racing the first delivery waits).
        lock = live.send_locks.setdefault(req.job_id, asyncio.Lock())
        try:
            async with lock:
                return await self._send(live, req)
        finally:
            if not lock.locked() and live.send_locks.get(req.job_id) is lock:
                live.send_locks.pop(req.job_id, None)

    async def _fail(self, account_id: str, req: SendRequest, err: DomainError) -> DomainError:
        details = err.details if isinstance(err.details, dict) else {}
        self.metrics.sends.labels(err.code.value.lower()).inc()
        await self.emit(
            MessageSendFailed(
                account_id=account_id,
                job_id=req.job_id,
                peer=str(req.peer),
                error_code=err.code.value,
                telegram_error=details.get("telegramError"),
                retry_after=err.retry_after,
            )
        )
        return err

    async def _send(self, live: LiveAccount, req: SendRequest) -> SendResult:
        account_id = live.account_id
        rec = await self.repos.sends.get(req.job_id)
        if rec is not None and rec.get("state") == "sent":
            if rec["account_id"] != account_id:
                raise Conflict(f"job {req.job_id} was delivered by account {rec['account_id']}")
            self.metrics.sends.labels("duplicate").inc()
            return self._result(rec, duplicate=True)
        doc = await self.repos.accounts.get(account_id)
        if doc is None:
            raise NotFound(f"no account {account_id}")
        state = AccountState(doc["state"])
        if state in TERMINAL or state.needs_login:
            raise await self._fail(
                account_id, req, Conflict(f"account {account_id} is {state.value}: it cannot send")
            )
        wait = self.health.flood_remaining(doc, "send")
        if wait > 0:
            seconds = math.ceil(wait)
            raise await self._fail(
                account_id,
                req,
                DomainError(
                    ErrorCode.FLOOD_WAIT,
                    f"account {account_id} waits {seconds}s more before sending (an earlier FLOOD_WAIT)",
                    {
                        "telegramError": None,
                        "category": "send",
                        "until": doc["flood_waits"]["send"].isoformat(),
                    },
                    retry_after=seconds,
                ),
            )
        if (
            state is AccountState.PEER_FLOOD
            and doc.get("cooldown_until")
            and doc["cooldown_until"] > utcnow()
        ):
            left = math.ceil((doc["cooldown_until"] - utcnow()).total_seconds())
            raise await self._fail(
                account_id,
                req,
                DomainError(
                    ErrorCode.TELEGRAM_ERROR,
                    f"account {account_id} is limited by Telegram (PEER_FLOOD) for {left}s more",
                    {"telegramError": "PEER_FLOOD"},
                    retry_after=left,
                ),
            )
        random_id = random_id_for(account_id, req.job_id)
        if rec is None:
            other = await self.repos.sends.claim(
                req.job_id,
                {
                    "account_id": account_id,
                    "state": "sending",
                    "random_id": random_id,
                    "peer": str(req.peer),
                    "started_at": utcnow(),
                },
            )
            if other is not None and other.get("state") == "sent":
                return self._result(other, duplicate=True)
        elif rec["account_id"] != account_id:
            raise Conflict(f"job {req.job_id} is being sent by account {rec['account_id']}")
        client = await self.pool.client_of(live)
        started = time.perf_counter()
        try:
            if req.typing_seconds > 0:
                await client.set_typing(req.peer)
                await asyncio.sleep(req.typing_seconds)  # deliberate: a person types before sending
            try:
                sent = await client.send_message(req, random_id)
            except TelegramFailure as exc:
                if exc.name != "RANDOM_ID_DUPLICATE":
                    raise
                # An earlier attempt of this very job reached Telegram: find it rather than send again.
                found = await client.find_sent(req.peer, req.text)
                if found is None:
                    raise
                sent = found
                self.metrics.sends.labels("recovered").inc()
        except (TelegramFailure, PeerNotFound) as exc:
            # Telegram refused: nothing was delivered, so the job may be tried again later.
            await self.repos.sends.delete(req.job_id)
            err = await self.health.failure(account_id, exc, method="messages.sendMessage", job_id=req.job_id)
            raise await self._fail(account_id, req, err) from None
        except TelegramUnreachable as exc:
            # The outcome is unknown: keep the claim; a retry uses the same random_id.
            err = await self.health.failure(account_id, exc, method="messages.sendMessage", job_id=req.job_id)
            raise await self._fail(account_id, req, err) from None
        self.metrics.send_seconds.observe(time.perf_counter() - started)
        return await self._record(live, req, sent)

    async def _record(self, live: LiveAccount, req: SendRequest, sent: SentMessage) -> SendResult:
        account_id = live.account_id
        now = utcnow()
        fields = {
            "account_id": account_id,
            "state": "sent",
            "message_id": sent.message_id,
            "peer_id": sent.peer_id,
            "chat_kind": sent.chat_kind,
            "sent_at": sent.date or now,
            "media_ref": sent.media_ref,
        }
        # Durable before the reply: a redelivery of this job id is answered from here.
        await self.repos.sends.record(req.job_id, fields)
        live.recent_sent.append((sent.peer_id, sent.message_id))
        await self.repos.accounts.bump_daily(account_id, today())
        await self.repos.accounts.set(account_id, {"last_active_at": now})
        self.metrics.sends.labels("sent").inc()
        await self.emit(
            MessageSent(
                account_id=account_id,
                job_id=req.job_id,
                chat_kind=sent.chat_kind or "supergroup",
                chat_id=sent.peer_id,
                message_id=sent.message_id,
                text=req.text,
                has_media=req.media_url is not None or req.file_id is not None,
                reply_to_message_id=req.reply_to,
                sent_at=fields["sent_at"],
                origin="rpc",
            )
        )
        return self._result({"_id": req.job_id, **fields}, duplicate=False)

    # --- other account calls ---------------------------------------------------------------------

    @account_call(ResolvePeer)
    async def resolve(self, live: LiveAccount, req: ResolvePeerRequest) -> ResolvedPeer:
        client = await self.pool.client_of(live)
        try:
            return await client.resolve(req.peer)
        except (TelegramFailure, TelegramUnreachable, PeerNotFound) as exc:
            raise await self.health.failure(live.account_id, exc, method="resolve") from None

    @account_call(GetHistory)
    async def history(self, live: LiveAccount, req: GetHistoryRequest) -> HistoryPage:
        client = await self.pool.client_of(live)
        try:
            peer = await client.resolve(req.peer)
            msgs = await client.history(req.peer, req.limit, req.offset_id, req.min_id)
        except (TelegramFailure, TelegramUnreachable, PeerNotFound) as exc:
            raise await self.health.failure(live.account_id, exc, method="messages.getHistory") from None
        return HistoryPage(
            peer_id=peer.peer_id,
            messages=msgs,
            next_offset_id=msgs[-1].message_id if len(msgs) == req.limit and msgs else None,
        )

    @account_call(MarkRead)
    async def mark_read(self, live: LiveAccount, req: MarkReadRequest) -> Ack:
        client = await self.pool.client_of(live)
        try:
            await client.mark_read(req.peer, req.max_id)
        except (TelegramFailure, TelegramUnreachable, PeerNotFound) as exc:
            raise await self.health.failure(live.account_id, exc, method="messages.readHistory") from None
        return Ack(affected=1)
