"""Events published by the campaign service (`tgm.campaign.evt.<name>.v1`).

The gateway pushes them to consoles; analytics counts them. Each is a fact about something that
already happened; payloads carry ids and small summaries, never message bodies beyond a preview, and
never secrets.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from .enums import Service
from .events import Event
from .models.campaign import (
    CampaignStatus,
    CollaborationStatus,
    JobReason,
    JobState,
    LeadStage,
    PeerRef,
    Priority,
    QueueCounts,
    QueueScopeKind,
    SwarmStatus,
)

PREVIEW_CHARS = 200
"""Longest text preview an event carries."""

# --- queue ---------------------------------------------------------------------------------------


class MessageQueued(Event):
    """Jobs were created (one event per `queue-message` batch or immediate send)."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "message-queued"

    batch_id: str
    job_ids: list[str] = Field(description="Created jobs (duplicates of existing keys are not listed).")
    created: int
    duplicates: int = 0
    skipped: int = 0
    priority: Priority
    campaign_id: str | None = None
    account_id: str | None = None
    lead_id: str | None = Field(None, description="Set for a single send to a lead.")
    not_before: datetime | None = None


class JobStateChanged(Event):
    """A job moved between states; one event per transition, in order per job."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "job-state-changed"

    job_id: str
    state: JobState
    previous_state: JobState | None = None
    reason: JobReason | None = None
    attempts: int = 0
    account_id: str | None = None
    peer: PeerRef
    lead_id: str | None = None
    campaign_id: str | None = None
    batch_id: str | None = None
    message_id: int | None = Field(None, description="Telegram message id, on `sent`.")
    retry_at: datetime | None = Field(None, description="When a rescheduled job is next due.")
    error: str | None = None


class MessageSent(Event):
    """A job was delivered (the earlier client's `message-sent`); analytics counts sends from it."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "message-sent"

    job_id: str
    account_id: str
    peer: PeerRef
    kind: Literal["private", "group"] = "private"
    message_id: int
    lead_id: str | None = None
    campaign_id: str | None = None
    template_id: str | None = None
    sent_at: datetime
    text_preview: str | None = Field(None, max_length=PREVIEW_CHARS)


class QueueProgress(Event):
    """A periodic snapshot while the queue has work (at most every few seconds)."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "queue-progress"

    totals: QueueCounts
    sends_last_minute: int = 0
    sends_per_second: float = 0.0
    waiting_by_limit: dict[str, int] = Field(
        default_factory=dict, description="Waiting jobs by the limit (LimitKind) holding them."
    )
    batch_id: str | None = Field(None, description="Set when the snapshot is about one batch.")
    campaign_id: str | None = None


class QueuePauseChanged(Event):
    """A queue scope was paused or resumed."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "queue-pause-changed"

    scope: QueueScopeKind
    account_id: str | None = None
    campaign_id: str | None = None
    paused: bool
    until: datetime | None = None
    reason: str | None = None
    by: str | None = None


class QueueCleared(Event):
    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "queue-cleared"

    scope: QueueScopeKind
    account_id: str | None = None
    campaign_id: str | None = None
    cancelled: int
    by: str | None = None


class AccountPacingChanged(Event):
    """An account's sending was held back or released by a flood wait or a peer-flood cool-down."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "account-pacing-changed"

    account_id: str
    limit: Literal["flood_wait", "peer_flood", "daily_cap"]
    until: datetime | None = Field(None, description="Null when released.")
    moved_jobs: int = Field(0, description="Pool jobs moved to other accounts.")


# --- compliance ----------------------------------------------------------------------------------


class UserBlacklisted(Event):
    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "user-blacklisted"

    user_id: int | None = None
    username: str | None = None
    blacklisted: bool
    reason: str | None = None
    cancelled_jobs: int = 0
    by: str | None = None


class UserOptedOut(Event):
    """A user wrote a stop word; no account will message them again."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "user-opted-out"

    user_id: int
    account_id: str
    stop_word: str
    cancelled_jobs: int = 0


# --- monitoring and triggers ---------------------------------------------------------------------


class KeywordMatched(Event):
    """A monitored group's message matched a keyword (the earlier client's `keyword-matched`)."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "keyword-matched"

    group_id: str
    chat_id: int | None = None
    group_title: str | None = None
    message_id: int | None = None
    user_id: int | None = None
    username: str | None = None
    first_name: str | None = None
    keyword_set_id: str
    keyword_id: str | None = None
    keyword: str
    match_type: Literal["exact", "contains", "regex", "fuzzy"]
    listener_account_id: str | None = None
    message_preview: str | None = Field(None, max_length=PREVIEW_CHARS)


class LeadCaptured(Event):
    """A user became a lead (by keyword, trigger, manual add, import or campaign)."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "lead-captured"

    lead_id: str
    user_id: int | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    source_type: str
    source_group_id: str | None = None
    source_group_title: str | None = None
    triggered_keyword: str | None = None
    stage: LeadStage = LeadStage.NEW
    intent_score: int | None = None


class LeadStageChanged(Event):
    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "lead-stage-changed"

    lead_id: str
    user_id: int | None = None
    from_stage: LeadStage | None = None
    to_stage: LeadStage
    reason: str | None = None
    by: str | None = Field(None, description="Principal, or `system`, `ai`, `trigger:<id>`.")


class TriggerFired(Event):
    """A trigger rule's actions ran (or were planned) for a matched message."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "trigger-fired"

    rule_id: str
    rule_name: str
    group_id: str | None = None
    user_id: int | None = None
    lead_id: str | None = None
    keyword: str | None = None
    actions: list[str] = Field(description="Action types run, in order.")
    job_ids: list[str] = Field(default_factory=list, description="Reply jobs it queued.")
    outcome: Literal["fired", "cooldown", "daily_limit", "condition_failed", "error"] = "fired"
    detail: str | None = None


class ReplySuggested(Event):
    """A trigger rule in AI `semi` mode drafted a reply for a human to send (nothing was sent)."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "reply-suggested"

    rule_id: str
    group_id: str | None = None
    chat_id: int | None = None
    message_id: int | None = None
    user_id: int | None = None
    lead_id: str | None = None
    account_id: str | None = Field(None, description="The account that would send it.")
    text: str = Field(max_length=4096)
    confidence: float | None = None


class OperatorNotified(Event):
    """Something an operator asked to be told about (a trigger rule's `notify` action)."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "operator-notified"

    channel: Literal["console", "alert"]
    title: str = Field(max_length=200)
    message: str = Field(max_length=1000)
    rule_id: str | None = None
    group_id: str | None = None
    user_id: int | None = None
    lead_id: str | None = None


class MonitoringStateChanged(Event):
    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "monitoring-state-changed"

    active: bool
    groups_watched: int = 0
    listeners: int = 0
    group_id: str | None = Field(None, description="Set when one group was paused or resumed.")
    group_paused: bool | None = None
    reason: str | None = None


class OneClickProgress(Event):
    """A step of one-click-start/stop (the earlier client's `one-click-start-progress`)."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "one-click-progress"

    operation: Literal["start", "stop"]
    step: str
    message: str
    progress: int = Field(ge=0, le=100)
    ok: bool | None = Field(None, description="Null while the step runs.")


# --- campaigns, ads, multi-role ------------------------------------------------------------------


class CampaignStateChanged(Event):
    """An automation campaign or an ad campaign changed status."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "campaign-state-changed"

    campaign_id: str
    kind: Literal["campaign", "ad_campaign"]
    name: str | None = None
    status: CampaignStatus
    previous_status: CampaignStatus | None = None
    reason: str | None = None


class CampaignProgress(Event):
    """A running automation campaign's counters, at most every few seconds while it runs."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "campaign-progress"

    campaign_id: str
    name: str | None = None
    targets: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    replied: int = 0
    percent: int = Field(0, ge=0, le=100)


class AdRunCompleted(Event):
    """One scheduled run of an ad campaign finished queuing and sending its posts."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "ad-run-completed"

    ad_campaign_id: str
    run: int
    posted: int
    failed: int
    skipped: int
    next_run_at: datetime | None = None


class CollaborationProgress(Event):
    """A collaboration run advanced (a line sent, a stage reached) or changed status."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "collaboration-progress"

    run_id: str
    scenario_id: str | None = None
    status: CollaborationStatus
    current_stage: int = 0
    current_line: int = 0
    messages_sent: int = 0
    messages_total: int = 0
    account_id: str | None = Field(None, description="Who spoke the last line.")
    job_id: str | None = None
    error: str | None = None


class SwarmStateChanged(Event):
    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "swarm-state-changed"

    swarm_id: str
    status: SwarmStatus
    group_id: str | None = None
    messages_sent: int = 0
    error: str | None = None


EntityKind = Literal[
    "template",
    "keyword_set",
    "group",
    "trigger_rule",
    "campaign",
    "ad_campaign",
    "lead",
    "tracked_user",
    "role",
    "script",
    "scenario",
]


class EntityChanged(Event):
    """A stored definition changed, so consoles can refresh lists (`templates-updated`, …)."""

    OWNER: ClassVar[Service] = Service.CAMPAIGN
    NAME: ClassVar[str] = "entity-changed"

    entity: EntityKind
    entity_id: str
    action: Literal["created", "updated", "deleted"]
    by: str | None = None


CAMPAIGN_EVENTS: tuple[type[Event], ...] = (
    MessageQueued,
    JobStateChanged,
    MessageSent,
    QueueProgress,
    QueuePauseChanged,
    QueueCleared,
    AccountPacingChanged,
    UserBlacklisted,
    UserOptedOut,
    KeywordMatched,
    LeadCaptured,
    LeadStageChanged,
    TriggerFired,
    ReplySuggested,
    OperatorNotified,
    MonitoringStateChanged,
    OneClickProgress,
    CampaignStateChanged,
    CampaignProgress,
    AdRunCompleted,
    CollaborationProgress,
    SwarmStateChanged,
    EntityChanged,
)
