"""The ad runner: what `AdService.tick()` does every second on the replica holding the `ads-runner`
lease (messaging's lease store, as automation's campaign runner does: a second replica doing the same
round would be harmless, only wasted).

A run moves through phases, each step idempotent or compare-and-set, so a SIGKILL anywhere resumes
where it was without a second post:

1. **Open**: a running campaign without an unfinished run whose `nextRunAt` has come opens run
   `runs + 1` (`ad_runs` insert, duplicate = already opened), then moves `runs`, `nextRunAt` (the
   following run) and `lastRunAt` compare-and-set on `runs`. A due time inside the quiet hours only
   moves `nextRunAt` to their end. Runs never overlap: the next one opens once the last settled
   (posts of a run expire at the next run's time, at most a day after their own, so a run always
   settles).
2. **Plan** (`open` -> `planned`): the run's accounts (the campaign's `accounts` as tg-session's
   `pick-accounts` sees them usable now, in the order given, else sorted; the given list when
   tg-session cannot answer) and, per target, its chat, account and template, or why it is skipped:
   `group_missing` / `unresolved` (no chat id: an @username is posted only as a monitored group whose
   chat id is known), `group_interval` (this campaign posted there less than
   `minGroupIntervalMinutes` ago), `group_cap` / `account_cap` (the daily caps, local day of the
   pacing timezone), `last_message_ours` (a monitored group whose last message seen by monitoring is
   older than our last post there), `no_account` (none usable, or every one was refused by that
   group before: banned, not a member, posting forbidden). Accounts per strategy: `single` the first;
   `rotate` the next account each run; `relay` the next account each post; `random` one picked by the
   post's key. An account a group refused before (`chat_write_forbidden`, `peer_invalid` on a post of
   this campaign) is passed over for that group: the next in the strategy's order takes it.
   Templates: `sequential` cycles through them per post and per run (each group sees the next
   variant each run), `random` picks by `templateWeights` seeded by the post's key.
3. **Queue** (`planned` -> `queued`): one `queue_message` per (account, template) with a fixed
   account, the group as a chat peer (a `group` job), key `ad:<campaign>:<run>:<target>`, priority
   `high` (`AD_PRIORITY`): the queue takes a lower rank strictly first, and collaboration's script
   lines and swarm answers are `high`, so at `normal` a post on an account that also plays a script
   waited behind every line queued after it and expired unsent (bench/collaboration: 30 of 100).
   At the same rank the queue is first queued, first sent: a run's posts go before the lines queued
   after them, the lines before the next run's posts. A refusal
   of the whole batch (template gone or inactive, account left the fleet) marks those targets skipped
   with the reason; the others go on.
4. **Settle** (`queued` -> `done`): once none of the run's jobs waits or is in flight: posted, failed,
   skipped by reason, `ad-run-completed`; a campaign with no run left completes.

A stopped or deleted campaign's unfinished run is settled too (a `planned` one without queuing: its
targets count as `cancelled`). What the queue does to a refused post is messaging's `outcomes.RULES`:
a ban or forbidden posting fails the job (`chat_write_forbidden`, not retried); slow mode requeues it
once for Telegram's wait (`rate_limit`, not counted as an attempt); a flood wait rests the account.
"""

from __future__ import annotations

import hashlib
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tgm_contracts.commands import messaging as messaging_cmd
from tgm_contracts.commands.ads import AdCampaignSpec, AdTarget
from tgm_contracts.events_campaign import AdRunCompleted
from tgm_contracts.models.campaign import CampaignStatus, QueuedPriority, peer_key
from tgm_runtime import DomainError

from ..automation.campaign_runner import run_state_event
from ..automation.group_service import GroupService
from ..automation.ports import Emit
from ..messaging.clock import Clock, aware, utc
from ..messaging.queue_control import QueueControl
from ..messaging.rules import Rules
from ..messaging.service import QueueService
from ..messaging.stores import MessagingStores
from .schedule import next_run, out_of_quiet
from .store import OPEN, AdStore, job_key, run_id

log = logging.getLogger("tgm.campaign.ads")

LEASE = "ads-runner"
LEASE_SECONDS = 10.0
POST_TTL = timedelta(hours=24)
#: The posts' queue priority: the rank of collaboration's lines, so sharing an account is first come,
#: first served between them (see 3. Queue above).
AD_PRIORITY: QueuedPriority = "high"
RUNNING = CampaignStatus.RUNNING.value


def spec_of(doc: Mapping[str, Any]) -> AdCampaignSpec:
    return AdCampaignSpec.model_validate(doc["spec"])


def target_key(target: AdTarget) -> str:
    """A target's stable part of a post key (the list may be reordered or edited between runs)."""
    raw = f"g{target.group_id}" if target.group_id is not None else f"c{target.chat}"
    safe = all(ch.isalnum() or ch in "_.-@" for ch in raw) and len(raw) <= 60
    return raw if safe else "h" + hashlib.sha256(raw.encode()).hexdigest()[:20]


def target_name(target: AdTarget) -> str:
    return str(target.group_id) if target.group_id is not None else str(target.chat)


def seeded(key: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


class AdRunner:
    def __init__(
        self,
        store: AdStore,
        messaging: MessagingStores,
        queue: QueueService,
        control: QueueControl,
        groups: GroupService,
        rules: Rules,
        emit: Emit,
        clock: Clock,
    ) -> None:
        self.store, self.messaging, self.queue, self.control = store, messaging, queue, control
        self.groups, self.rules, self.emit, self.clock = groups, rules, emit, clock
        self.owner = "ads-" + uuid.uuid4().hex[:12]
        #: publishes the watched chats again (monitoring's republish; set by AdService)
        self.watch: Callable[[], Awaitable[None]] | None = None

    async def timezone(self) -> str:
        return (await self.rules.limits()).timezone or "UTC"

    # --- one round -----------------------------------------------------------------------------

    async def tick(self) -> None:
        now_ts = self.clock()
        if not await self.messaging.leases.acquire(
            LEASE, self.owner, utc(now_ts), utc(now_ts + LEASE_SECONDS)
        ):
            return
        seen: set[str] = set()
        for doc in await self.store.in_statuses([RUNNING]):
            seen.add(doc["_id"])
            try:
                await self.round(doc)
            except Exception as exc:  # one campaign's trouble never stops the others
                log.exception("ad campaign %s: round failed", doc["_id"])
                await self.store.set_fields(doc["_id"], {"last_error": f"{type(exc).__name__}: {exc}"[:500]})
        for cid in await self.store.campaigns_with_unfinished_runs(exclude=seen):
            try:
                for run in await self.store.unfinished_runs(cid):
                    await self.advance(await self.store.get(cid), run)
            except Exception:
                log.exception("ad campaign %s: settling a run failed", cid)

    async def round(self, doc: Mapping[str, Any]) -> None:
        unfinished = await self.store.unfinished_runs(doc["_id"])
        for run in unfinished:
            await self.advance(doc, run)
        if unfinished and await self.store.unfinished_runs(doc["_id"]):
            return  # runs never overlap: the next opens once this one settled
        current = await self.store.get(doc["_id"])
        if current is None or current["status"] != RUNNING:
            return
        await self.maybe_open(current)

    # --- 1. open -------------------------------------------------------------------------------

    async def maybe_open(self, doc: Mapping[str, Any]) -> None:
        cid = doc["_id"]
        now = utc(self.clock())
        spec = spec_of(doc)
        due = aware(doc.get("next_run_at"))
        runs = int(doc.get("runs", 0))
        limit = spec.schedule.max_runs
        if due is None or (limit is not None and runs >= limit):
            await self.finish(doc, CampaignStatus.COMPLETED, "no run left in the schedule")
            return
        if due > now:
            return
        tz = await self.timezone()
        moved = out_of_quiet(now, spec.quiet_hours, tz)
        if moved > now:
            await self.store.transition(cid, [RUNNING], {"next_run_at": moved}, where={"runs": runs})
            return
        n = runs + 1
        following = next_run(spec.schedule, due, tz, anchor=aware(doc.get("anchor")))
        if following is not None and following <= now:  # missed runs are not made up one by one
            following = next_run(spec.schedule, now, tz, anchor=aware(doc.get("anchor")))
        if limit is not None and n >= limit:
            following = None
        await self.store.open_run(
            {
                "_id": run_id(cid, n),
                "campaign_id": cid,
                "run": n,
                "due_at": due,
                "phase": "open",
                "expires_at": min(following, now + POST_TTL) if following else now + POST_TTL,
                "created_at": now,
            }
        )
        await self.store.transition(
            cid,
            [RUNNING],
            {"runs": n, "next_run_at": following, "last_run_at": now, "updated_at": now},
            where={"runs": runs},
        )

    # --- 2-4. a run ----------------------------------------------------------------------------

    async def advance(self, doc: Mapping[str, Any] | None, run: Mapping[str, Any]) -> None:
        cid, n = run["campaign_id"], int(run["run"])
        active = doc is not None and doc["status"] == RUNNING
        if run["phase"] == "open":
            if not active or doc is None:
                await self.store.move_run(cid, n, "open", {"phase": "done", "finished_at": utc(self.clock())})
                return
            plan, accounts = await self.plan(doc, spec_of(doc), n)
            moved = await self.store.move_run(
                cid,
                n,
                "open",
                {"phase": "planned", "plan": plan, "accounts": accounts, "planned_at": utc(self.clock())},
            )
            if moved is None:
                return
            run = moved
        if run["phase"] == "planned":
            if active:
                if self.watch is not None:  # its groups' messages reach campaign (replies)
                    await self.watch()
                await self.enqueue(cid, run)
            moved = await self.store.move_run(cid, n, "planned", {"phase": "queued"})
            if moved is None:
                return
            run = moved
            current = await self.store.get(cid)
            if current is None or (current["status"] != RUNNING and current.get("cancel_pending", True)):
                # Stopped or removed while this round queued: what it queued must not outlive that.
                await self.control.cancel_campaign(cid, "ad campaign stopped")
        if run["phase"] == "queued":
            await self.settle(doc, run)

    async def plan(
        self, doc: Mapping[str, Any], spec: AdCampaignSpec, n: int
    ) -> tuple[list[dict[str, Any]], list[str]]:
        cid = doc["_id"]
        now = utc(self.clock())
        accounts = await self.accounts(spec)
        refused = await self.store.refused_pairs(cid)
        midnight = await self._midnight(now)
        per_account, per_peer, last_sent = await self.store.made_since(cid, midnight)
        templates = list(spec.template_ids)
        weights = spec.template_weights or [1] * len(templates)
        total = len(spec.targets)
        out: list[dict[str, Any]] = []
        for i, target in enumerate(spec.targets):
            tk = target_key(target)
            key = job_key(cid, n, tk)
            entry: dict[str, Any] = {
                "tk": tk,
                "target": target_name(target),
                "group_id": target.group_id,
                "peer": None,
                "label": None,
                "account_id": None,
                "template_id": None,
                "skip": None,
                "detail": None,
            }
            out.append(entry)
            if spec.template_rotation == "random":
                entry["template_id"] = seeded(key + ":t").choices(templates, weights)[0]
            else:
                entry["template_id"] = templates[(n - 1 + i) % len(templates)]
            peer, label, group, why = await self._peer(target)
            entry["peer"], entry["label"] = peer, label
            if peer is None:
                entry["skip"], entry["detail"] = why
                continue
            pk = peer_key(peer)
            last = aware(last_sent.get(pk))
            if last is not None and now - last < timedelta(minutes=spec.min_group_interval_minutes):
                entry["skip"] = "group_interval"
                entry["detail"] = f"posted there at {last.isoformat()}"
                continue
            if (
                spec.max_posts_per_group_per_day is not None
                and per_peer.get(pk, 0) >= spec.max_posts_per_group_per_day
            ):
                entry["skip"], entry["detail"] = "group_cap", "daily posts in this group reached"
                continue
            seen_at = aware((group or {}).get("last_message_at"))
            if spec.skip_if_last_message_ours and last is not None and seen_at is not None and seen_at < last:
                entry["skip"], entry["detail"] = "last_message_ours", "nobody wrote since our last post"
                continue
            order = self._order(spec, accounts, n, i, total, key)
            capped = False
            chosen = None
            for account in order:
                if (account, pk) in refused:
                    continue
                cap = spec.max_posts_per_account_per_day
                if cap is not None and per_account.get(account, 0) >= cap:
                    capped = True
                    continue
                chosen = account
                break
            if chosen is None:
                entry["skip"] = "account_cap" if capped else "no_account"
                entry["detail"] = (
                    "no account under its daily cap"
                    if capped
                    else "no usable account"
                    if not accounts
                    else "every account was refused by this group"
                )
                continue
            entry["account_id"] = chosen
            per_account[chosen] = per_account.get(chosen, 0) + 1
            per_peer[pk] = per_peer.get(pk, 0) + 1
        return out, accounts

    def _order(
        self, spec: AdCampaignSpec, accounts: Sequence[str], n: int, i: int, total: int, key: str
    ) -> list[str]:
        if not accounts:
            return []
        m = len(accounts)
        if spec.account_strategy == "single":
            return [accounts[0]]
        if spec.account_strategy == "random":
            shuffled = list(accounts)
            seeded(key + ":a").shuffle(shuffled)
            return shuffled
        start = (n - 1) % m if spec.account_strategy == "rotate" else ((n - 1) * total + i) % m
        return [*accounts[start:], *accounts[:start]]

    async def accounts(self, spec: AdCampaignSpec) -> list[str]:
        pool = spec.accounts.model_dump(mode="json", exclude_none=True, by_alias=False)
        given = list(dict.fromkeys(spec.accounts.account_ids or []))
        usable = await self.queue.directory.pool(pool)
        if given:
            ok = set(usable)
            picked = [a for a in given if a in ok]
            return picked if usable else given  # tg-session could not answer: the list as given
        return sorted(usable)

    async def _peer(
        self, target: AdTarget
    ) -> tuple[int | str | None, str | None, dict[str, Any] | None, tuple[str, str]]:
        if target.group_id is not None:
            group = await self.groups.get(target.group_id)
            if group is None:
                return None, None, None, ("group_missing", f"monitored group {target.group_id} was removed")
            label = group.get("title") or group.get("username") or target.group_id
            if group.get("chat_id") is None:
                return (
                    None,
                    label,
                    group,
                    ("unresolved", "the group's chat id is not known yet (check-group)"),
                )
            return int(group["chat_id"]), label, group, ("", "")
        chat = target.chat
        if isinstance(chat, int) and chat < 0:
            return chat, str(chat), None, ("", "")
        return (
            None,
            str(chat),
            None,
            (
                "unresolved",
                "give the chat id, or add it as a monitored group (add-group) so its chat id is learnt",
            ),
        )

    async def _midnight(self, now: datetime) -> datetime:
        try:
            zone = ZoneInfo(await self.timezone())
        except (KeyError, ValueError):
            zone = ZoneInfo("UTC")
        return now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)

    async def enqueue(self, cid: str, run: Mapping[str, Any]) -> None:
        n = int(run["run"])
        batches: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for entry in run.get("plan") or []:
            if entry.get("skip") is None and entry.get("account_id"):
                batches.setdefault((entry["account_id"], entry["template_id"]), []).append(entry)
        expires = aware(run.get("expires_at"))
        for (account, template), entries in sorted(batches.items()):
            keys = [job_key(cid, n, e["tk"]) for e in entries]
            req = messaging_cmd.QueueMessageRequest(
                template_id=template,
                account_id=account,
                recipients=[
                    messaging_cmd.Recipient(peer=e["peer"], idempotency_key=k)
                    for e, k in zip(entries, keys, strict=True)
                ],
                priority=AD_PRIORITY,
                expires_at=expires if expires and expires > utc(self.clock()) else None,
                idempotency_key=f"{keys[0]}:batch",
                campaign_id=cid,
                dedupe_recipients=False,
            )
            try:
                await self.queue.queue_message(req, None)
            except DomainError as exc:
                log.warning("ad campaign %s run %d: %d posts cannot be queued: %s", cid, n, len(entries), exc)
                reason = "template_error" if "template" in exc.message else "no_account"
                await self.store.skip_entries(cid, n, [e["tk"] for e in entries], reason, exc.message[:300])

    async def settle(self, doc: Mapping[str, Any] | None, run: Mapping[str, Any]) -> None:
        cid, n = run["campaign_id"], int(run["run"])
        jobs = await self.store.run_jobs(cid, n)
        if any(j["state"] in OPEN for j in jobs):
            return
        reasons: dict[str, int] = {}
        posted = failed = skipped = cancelled = 0
        for j in jobs:
            state = j["state"]
            if state == "sent":
                posted += 1
                continue
            key = f"{state}:{j.get('reason') or 'unknown'}"
            reasons[key] = reasons.get(key, 0) + 1
            if state == "failed":
                failed += 1
            elif state == "skipped":
                skipped += 1
            else:
                cancelled += 1
        queued_keys = {j["key"] for j in jobs}
        for entry in run.get("plan") or []:
            if entry.get("skip") is not None:
                skipped += 1
                key = f"skipped:{entry['skip']}"
                reasons[key] = reasons.get(key, 0) + 1
            elif job_key(cid, n, entry["tk"]) not in queued_keys:
                cancelled += 1  # planned, never queued: the campaign stopped first
                reasons["cancelled:campaign_stopped"] = reasons.get("cancelled:campaign_stopped", 0) + 1
        now = utc(self.clock())
        moved = await self.store.move_run(
            cid,
            n,
            "queued",
            {
                "phase": "done",
                "posted": posted,
                "failed": failed,
                "skipped": skipped,
                "cancelled": cancelled,
                "reasons": reasons,
                "finished_at": now,
            },
        )
        if moved is None:
            return
        current = await self.store.get(cid)
        await self.emit(
            AdRunCompleted(
                ad_campaign_id=cid,
                run=n,
                posted=posted,
                failed=failed,
                skipped=skipped,
                next_run_at=(current or {}).get("next_run_at"),
            )
        )

    # --- status --------------------------------------------------------------------------------

    async def finish(self, doc: Mapping[str, Any], status: CampaignStatus, reason: str) -> None:
        now = utc(self.clock())
        moved = await self.store.transition(
            doc["_id"],
            [RUNNING],
            {"status": status.value, "reason": reason, "finished_at": now, "updated_at": now},
        )
        if moved is not None:
            await self.state_changed(moved, CampaignStatus.RUNNING, reason)

    async def state_changed(
        self, doc: Mapping[str, Any], previous: CampaignStatus | None, reason: str | None
    ) -> None:
        await self.emit(run_state_event("ad_campaign", doc, previous, reason))
