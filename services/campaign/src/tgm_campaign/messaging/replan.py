"""Re-planning held jobs: a job the scheduler moved out of the due set for a limit (`held_by`, its
`notBefore` when that limit lifts) is made due again as soon as something changes that could lift it
earlier, so the next round plans it under the rules in force now — sent, or held again with the new
reason and release time.

What releases which holds:

- the `pacing` or `compliance` settings changed (`save-settings`, `reset-settings`, a restore): the
  holds those values decide — never Telegram's own (`flood_wait`, and `peer_flood`, whose cool-down
  was fixed when Telegram answered). Two paths lead here: the `settings-changed` event (durable
  consumer `messaging_settings`, which also re-reads the section at once instead of after the
  settings cache's 5 s) releases every hold of that section (`SECTION_HOLDS`: the event does not say
  which values changed), and each scheduler round compares the limits it read with the previous
  round's and releases the holds of the fields that changed (`FIELD_HOLDS`) — so a replica whose
  cache was still old when another one released the jobs (and held them again by the old rule)
  releases them once it sees the change;
- the recipient wrote to an account (`message-received`, from chat history's consumer — campaign's
  one durable consumer of it in messaging): that user's jobs held by the first-contact caps
  (`warmup`, `account_daily_non_contacts`) — and jobs held because a template's recipient facts were
  unknown. The account is recorded on the job (`wrote_to`) so that whichever replica plans it sees
  the new relationship at once, not after its cached view of the conversations expires;
- an account's warm-up switched off in tg-session (`warmupEnabled`, no event of its own): the chores
  read the profiles of the accounts with warm-up-held jobs (cached a minute) and release those jobs.

Decisions: a released job never becomes due before the time it was asked for (`requested_at`);
jobs are released one conditional write each through `JobStore` (a job claimed or changed meanwhile
is left alone), with a `requeued` history entry and a `job-state-changed` event.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from tgm_contracts.events_system import SettingsChanged
from tgm_contracts.models.campaign import JobReason, LimitKind
from tgm_runtime.routes import consumes

from .clock import Clock, utc
from .job_events import JobEvents
from .pacing import AccountProfile, Limits
from .stores import MessagingStores

log = logging.getLogger("tgm.campaign.replan")

#: The accounts' profiles by id (`AccountDirectory.profiles`).
Profiles = Callable[[Iterable[str]], Awaitable[Mapping[str, AccountProfile]]]

#: Holds a settings change can lift: all but those Telegram imposed.
SETTINGS_HOLDS = tuple(k.value for k in LimitKind if k not in (LimitKind.FLOOD_WAIT, LimitKind.PEER_FLOOD))
#: Holds that end when the recipient writes first (they count messages to strangers).
STRANGER_HOLDS = (LimitKind.WARMUP.value, LimitKind.ACCOUNT_DAILY_NON_CONTACTS.value)
#: A job waiting for a template's recipient facts (see `dispatch.py`): the user writing tells them.
FACTS_HOLD = JobReason.MISSING_VARIABLE.value

_K = LimitKind
#: Which holds a change of each `Limits` field can lift (fields not named lift none: retries, the
#: cool-down length, which applies to the next PEER_FLOOD only). The margin widens every window.
FIELD_HOLDS: dict[str, tuple[str, ...]] = {
    "per_account_per_minute": (_K.ACCOUNT_MINUTE.value,),
    "per_account_per_hour": (_K.ACCOUNT_HOUR.value,),
    "daily_non_contacts": STRANGER_HOLDS,
    "warmup_days": STRANGER_HOLDS,
    "per_chat_min_interval": (_K.PER_CHAT.value,),
    "per_group_per_minute": (_K.PER_GROUP.value,),
    "per_api_per_second": (_K.API_CREDENTIAL.value,),
    "global_per_second": (_K.GLOBAL.value,),
    "jitter_min": (_K.JITTER.value,),
    "jitter_max": (_K.JITTER.value,),
    "max_in_flight": (_K.JITTER.value,),
    "quiet_start": (_K.QUIET_HOURS.value,),
    "quiet_end": (_K.QUIET_HOURS.value,),
    "timezone": (_K.QUIET_HOURS.value,),
    "account_timezones": (_K.QUIET_HOURS.value,),
    "recipient_daily_cap": (_K.RECIPIENT_CAP.value,),
    "recipient_total_cap": (_K.RECIPIENT_CAP.value,),
    "margin": SETTINGS_HOLDS,
}
#: What a change of each settings section can lift (the event does not say which values changed).
SECTION_HOLDS = {
    "pacing": tuple(k for k in SETTINGS_HOLDS if k != _K.RECIPIENT_CAP.value),
    "compliance": (_K.RECIPIENT_CAP.value,),
}


def holds_changed(before: Limits, after: Limits) -> tuple[str, ...]:
    """The holds the change from `before` to `after` can lift."""
    out: dict[str, None] = {}
    for f in dataclasses.fields(Limits):
        if getattr(before, f.name) != getattr(after, f.name):
            out.update(dict.fromkeys(FIELD_HOLDS.get(f.name, ())))
    return tuple(out)


class Replanner:
    def __init__(
        self,
        stores: MessagingStores,
        events: JobEvents,
        clock: Clock,
        reload_section: Callable[[str], Awaitable[object]],
    ) -> None:
        self.stores = stores
        self.events = events
        self.clock = clock
        self._reload_section = reload_section

    async def release(
        self,
        kinds: Sequence[str],
        why: str,
        *,
        peer_keys: Sequence[str] = (),
        account_id: str | None = None,
        wrote_to: str | None = None,
    ) -> int:
        """Make the jobs held by `kinds` (of these recipients, of this account, when given) due
        again; returns how many."""
        now = utc(self.clock())
        released = 0
        for doc in await self.stores.jobs.held(kinds, now, peer_keys=peer_keys, account_id=account_id):
            state = await self.stores.jobs.release_held(doc, now, why, wrote_to)
            if state is not None:
                released += 1
                await self.events.job_changed(doc, state, doc["state"])
        if released:
            log.info("%d held job(s) planned again: %s", released, why)
            self.events.wake()
        return released

    async def limits_changed(self, before: Limits, after: Limits) -> int:
        kinds = holds_changed(before, after)
        return await self.release(kinds, "the sending limits changed") if kinds else 0

    async def warmup_switched_off(self, profiles: Profiles) -> int:
        """Jobs held by the warm-up ramp of an account that no longer warms up (its `warmupEnabled`
        changed in tg-session, which publishes no event for it: read from the accounts' profiles,
        cached a minute by `AccountDirectory`)."""
        warmup = (LimitKind.WARMUP.value,)
        accounts = await self.stores.jobs.held_accounts(warmup, utc(self.clock()))
        if not accounts:
            return 0
        released = 0
        for account_id, profile in (await profiles(accounts)).items():
            if not profile.warmup:
                released += await self.release(
                    warmup, f"account {account_id} no longer warms up", account_id=account_id
                )
        return released

    async def recipient_wrote(self, account_id: str, keys: Sequence[str]) -> int:
        """The user of `keys` wrote to `account_id`: no longer a stranger to it."""
        return await self.release(
            (*STRANGER_HOLDS, FACTS_HOLD),
            f"the recipient wrote to account {account_id}",
            peer_keys=keys,
            wrote_to=account_id,
        )

    @consumes(SettingsChanged, durable="messaging_settings")
    async def on_settings_changed(self, evt: SettingsChanged) -> None:
        kinds = SECTION_HOLDS.get(evt.section)
        if kinds is None:
            return
        await self._reload_section(evt.section)  # this replica plans with the new values at once
        await self.release(kinds, f"settings section {evt.section} changed (version {evt.version})")
