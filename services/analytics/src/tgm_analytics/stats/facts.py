"""Events in, facts out: which event becomes which counted fact (a pure mapping, no database).

Each counted event becomes ONE fact document in `stats_facts` with `_id` = the event id, written with
`$setOnInsert` (a redelivered event finds its fact and changes nothing). Fact fields (short names, as
stored): `k` kind, `t` when it happened (the event's `occurredAt`), `s` publishing service, `a` account,
`c` campaign, `ch` chat id, `ck` `private`/`group`, `u` user id, `n` value (1, or seconds/collected),
`e` error or state, `j` job id, `g` campaign group id, `title` chat title, `o` origin of a send
(`queue`, `automation`, `external`), `m` Telegram message id (sends and received messages: orders a
conversation for reply detection).

A fact keyed by what it is about rather than by its event (`sent`, a group's `received`,
`member_joined`) is skipped when a fact with the event's own id exists: it was counted before the
key changed (a replay after a restore recounts events of that time).

Fact kinds and their events:

| kind | event | notes |
|---|---|---|
| `sent` | tg-session `message-sent` (every origin: rpc, command, external) | campaign's `message-sent` is the same send and is NOT counted (it only names the job's campaign). `o` = `external` for origin `external` (typed on another device), else `queue`; the consumer makes it `automation` when a `trigger-fired` listed the job. `_id` = `sent:<account>:<chat>:<message id>`: one Telegram message is one send however many events report it (our own send also reported as typed elsewhere, when its echo arrived before the send was recorded, keeps the origin of ours: the consumer's `claim_send`) |
| `failed` | campaign `job-state-changed` to `failed` | a job's permanent failure, every reason (`e` = the `JobReason`: template_error, attempts_exhausted, privacy_restricted…); `_id` = `failed:<job id>`, so a job counts once however often it was retried |
| `attempt_failed` | tg-session `message-send-failed` | every send attempt Telegram refused, with its error (a job retried after FLOOD_WAIT and then delivered has one) |
| `received` | tg-session `message-received` with `isOutgoing` false | private and group chats (`ck`); in a supergroup or channel `_id` = `received:<chat>:<message id>`, so a message every fleet account in the group published counts once (`a` = the first account's; a basic group's ids are per member and stay per account) |
| `flood_wait` | tg-session `flood-wait-recorded` | `n` = seconds |
| `login` / `login_failed` | `account-logged-in` / `login-failed` | |
| `state_change` | `account-status-changed` | `e` = new state |
| `group_join` / `group_leave` | `group-joined` / `group-left` | |
| `member_joined` | `member-joined` | `u` = the member; `_id` = `member_joined:<chat>:<user>:<joinedAt>`, one join however many fleet accounts saw it |
| `extracted` | `extraction-finished` (any final state) | `n` = users collected |
| `keyword` | campaign `keyword-matched` | `a` = the listener account |
| `ai_reply` / `ai_handoff` | ai `ai-response-generated` (`handoff` false / true) | the event has no token count |
| `opt_out` | campaign `user-opted-out` | |
| `blacklist` | campaign `user-blacklisted` with `blacklisted` true | un-blacklisting is not counted |
| `alert` | analytics `alert-raised` that is not a repeat | `e` = level |
| `trigger` | campaign `trigger-fired` (every outcome) | `e` = outcome (`fired`, `cooldown`, `daily_limit`, `condition_failed`, `error`), `r` = rule, `g` = group, `lead` = the lead it captured; `ch` = the group's chat when a `keyword-matched` named it (filled by the consumer) |
| `ai_suggest` | campaign `reply-suggested` (AI `semi` mode) | `a` = the account that would send it, `r` = rule |
| `campaign_state` | campaign `campaign-state-changed` of `kind` `campaign` | `c` = campaign, `e` = new status (a start is `running`, a resume too) |

`campaign-progress` is a snapshot of a campaign's counters, not a countable fact: it feeds the
`stats_campaigns` projection (service.py), as does `campaign-state-changed` (latest status).

The projections beside the facts, and how they are written, are in service.py.
"""

from __future__ import annotations

from typing import Any

from tgm_contracts import events_ai as ai
from tgm_contracts import events_analytics as an
from tgm_contracts import events_campaign as cp
from tgm_contracts import events_session as ts
from tgm_contracts.events import Event
from tgm_contracts.models.campaign import JobState

#: Chat kinds whose message ids belong to the chat (every member sees one message under one id); a basic
#: group's ids are per member, like a private chat's.
SHARED_IDS = frozenset({"supergroup", "channel", "gigagroup"})


def chat_kind(kind: str | None) -> str | None:
    """`private` or `group` (groups, supergroups, channels and gigagroups are all `group`)."""
    if kind is None:
        return None
    return "private" if kind == "private" else "group"


def peer_chat(peer: str) -> tuple[int | None, str | None]:
    """A send's peer as a chat id and kind when it is numeric (negative ids are groups)."""
    try:
        value = int(peer)
    except ValueError:
        return None, None  # a @username or +phone: the chat is unknown
    return value, ("group" if value < 0 else "private")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _rule_run(evt: cp.TriggerFired | cp.ReplySuggested) -> dict[str, Any]:
    """The fields of a trigger rule's run (fired or skipped, or a drafted reply): the rule, the group
    and user it ran for, the lead it captured; a run for a group's message is about a `group` chat."""
    return {
        "r": evt.rule_id,
        "g": evt.group_id,
        "u": evt.user_id,
        "lead": evt.lead_id,
        "ck": "group" if evt.group_id is not None else None,
    }


def fact_of(evt: Event) -> dict[str, Any] | None:
    """The fact an event contributes, or None when it feeds no counted figure."""
    f: dict[str, Any]
    if isinstance(evt, ts.MessageSent):
        ck = chat_kind(evt.chat_kind)
        origin = "external" if evt.origin == "external" else "queue"
        f = {"k": "sent", "a": evt.account_id, "ch": evt.chat_id, "ck": ck, "j": evt.job_id, "o": origin}
        f.update(m=evt.message_id, _id=f"sent:{evt.account_id}:{evt.chat_id}:{evt.message_id}")
        if ck == "private":
            f["u"] = evt.chat_id
    elif isinstance(evt, ts.MessageSendFailed):
        ch, ck = peer_chat(evt.peer)
        error = evt.telegram_error or evt.error_code
        f = {"k": "attempt_failed", "a": evt.account_id, "ch": ch, "ck": ck, "j": evt.job_id, "e": error}
    elif isinstance(evt, cp.JobStateChanged):
        if evt.state is not JobState.FAILED:
            return None
        ch, ck = peer_chat(str(evt.peer))
        reason = evt.reason.value if evt.reason is not None else "unknown"
        f = {"k": "failed", "a": evt.account_id, "c": evt.campaign_id, "ch": ch, "ck": ck, "j": evt.job_id}
        f.update(e=reason, _id=f"failed:{evt.job_id}")
    elif isinstance(evt, ts.MessageReceived):
        if evt.is_outgoing:
            return None  # our own account typing elsewhere: counted as `sent` (origin external)
        f = {
            "k": "received",
            "a": evt.account_id,
            "ch": evt.chat_id,
            "ck": chat_kind(evt.chat_kind),
            "u": evt.sender_id,
            "title": evt.chat_title,
            "m": evt.message_id,
        }
        if evt.chat_kind in SHARED_IDS:
            # Every fleet account in the group publishes the message; the group received it once.
            f["_id"] = f"received:{evt.chat_id}:{evt.message_id}"
    elif isinstance(evt, ts.FloodWaitRecorded):
        f = {"k": "flood_wait", "a": evt.account_id, "n": evt.seconds, "j": evt.job_id, "e": evt.category}
    elif isinstance(evt, ts.AccountLoggedIn):
        f = {"k": "login", "a": evt.account_id}
    elif isinstance(evt, ts.LoginFailed):
        f = {"k": "login_failed", "a": evt.account_id, "e": evt.error}
    elif isinstance(evt, ts.AccountStatusChanged):
        f = {"k": "state_change", "a": evt.account_id, "e": evt.state.value}
    elif isinstance(evt, ts.GroupJoined):
        f = {"k": "group_join", "a": evt.account_id, "ch": evt.chat_id, "ck": "group", "title": evt.title}
    elif isinstance(evt, ts.GroupLeft):
        f = {"k": "group_leave", "a": evt.account_id, "ch": evt.chat_id, "ck": "group"}
    elif isinstance(evt, ts.MemberJoined):
        f = {
            "k": "member_joined",
            "a": evt.account_id,
            "ch": evt.chat_id,
            "ck": "group",
            "u": evt.user.user_id,
            "title": evt.chat_title,
            # seen by every fleet account in the group: one join (keyed by its own date, not the event's)
            "_id": f"member_joined:{evt.chat_id}:{evt.user.user_id}:{evt.joined_at.timestamp()}",
        }
    elif isinstance(evt, ts.ExtractionFinished):
        f = {"k": "extracted", "a": evt.account_id, "ch": evt.chat_id, "n": evt.collected, "e": evt.state}
    elif isinstance(evt, cp.KeywordMatched):
        f = {
            "k": "keyword",
            "a": evt.listener_account_id,
            "ch": evt.chat_id,
            "ck": "group" if evt.chat_id is not None else None,
            "u": evt.user_id,
            "g": evt.group_id,
            "title": evt.group_title,
        }
    elif isinstance(evt, ai.AiResponseGenerated):
        user = _int(evt.user_id)
        f = {"k": "ai_handoff" if evt.handoff else "ai_reply", "a": evt.account_id, "u": user, "ch": user}
        if user is not None:
            f["ck"] = "private"
    elif isinstance(evt, cp.UserOptedOut):
        f = {"k": "opt_out", "a": evt.account_id, "u": evt.user_id, "ch": evt.user_id, "ck": "private"}
    elif isinstance(evt, cp.UserBlacklisted):
        if not evt.blacklisted:
            return None
        f = {"k": "blacklist", "u": evt.user_id, "ch": evt.user_id}
        if evt.user_id is not None:
            f["ck"] = "private"
    elif isinstance(evt, cp.TriggerFired):
        f = {"k": "trigger", "e": evt.outcome, **_rule_run(evt)}
    elif isinstance(evt, cp.ReplySuggested):
        f = {"k": "ai_suggest", "a": evt.account_id, "ch": evt.chat_id, **_rule_run(evt)}
    elif isinstance(evt, cp.CampaignStateChanged):
        if evt.kind != "campaign":
            return None  # ad campaigns are counted from their runs, not here
        f = {"k": "campaign_state", "c": evt.campaign_id, "e": evt.status.value}
    elif isinstance(evt, an.AlertRaised):
        if evt.repeat:
            return None  # a repeat grows an existing alert's count; it is not a new alert
        f = {"k": "alert", "a": evt.account_id, "e": evt.level}
    else:
        return None
    f.setdefault("_id", evt.event_id)
    f["t"] = evt.occurred_at
    f["s"] = evt.OWNER.value
    f.setdefault("n", 1)
    return {k: v for k, v in f.items() if v is not None}
