"""Shared models of the campaign service: peers, account choice, message bodies, queue jobs and
limits, templates, chat history, leads and the status vocabularies its events also use.

Command modules (`commands.messaging`, `commands.automation`, `commands.crm`, `commands.ads`,
`commands.collaboration`) compose these. Input models subclass `Request` (unknown fields are an
error); views subclass `Response` (readers ignore fields they do not know).

Template syntax (rendered by campaign before a job is dispatched, and by the preview commands):

- ``{first_name}`` or ``{{first_name}}``: a variable. Values come from the job's `variables`, then
  the recipient (``first_name``, ``last_name``, ``full_name``, ``username``), then the context
  (``keyword``, ``group``, ``date``, ``time``, ``account_first_name``), then the template's declared
  default. The recipient's facts are what the product knows of the user when the job is rendered
  (campaign's users directory, fed by chat history and leads, then tg-session's `describe-users`:
  extractions and the peers its accounts saw). A recipient fact nobody knows (and no default) keeps
  the job waiting (reason ``missing_variable``, retried with backoff, and at once when the user
  writes); any other variable with no value and no default fails the job (reason
  ``template_error``). Either way nobody receives ``Hello {first_name}``.
- ``{Hi|Hello|Hey}``: spintax; one option is picked at random per recipient. Braces holding a ``|``
  are spintax; options may nest and may contain variables: ``{Hi|Hello} {first_name}``.
- ``\\{`` and ``\\}`` are literal braces.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from ..base import HttpUrlStr, Id, Request, Response
from .session import AccountId, GroupName, PeerRef, RoleField, TagName

# Peers and accounts are written as tg-session writes them, so a job's peer goes to its `send` call
# unchanged: `PeerRef` is a user or chat id (negative for groups and channels), `@username` or
# `+phone`; `ChatRef` is a group id, `@username` or invite `+hash`; `AccountId` is a subject token.

# --- small typed strings -------------------------------------------------------------------------


def _strip_at(v: str) -> str:
    return v[1:] if v.startswith("@") else v


Username = Annotated[
    str,
    Field(pattern=r"^@?[A-Za-z][A-Za-z0-9_]{3,31}$", description="Telegram username, with or without @."),
    AfterValidator(_strip_at),
]
UserId = Annotated[int, Field(gt=0, description="Telegram user id.")]
HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Local time HH:MM.")]
VariableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")]
Tag = Annotated[str, Field(min_length=1, max_length=40)]
IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.:/@+=-]+$",
        description="Caller's key: enqueueing the same key again returns the existing job, never a new one.",
    ),
]
CustomFieldValue = str | int | float | bool | None


def count_set(model: Any, *names: str) -> int:
    return sum(getattr(model, n) is not None for n in names)


# --- vocabularies --------------------------------------------------------------------------------


class Priority(StrEnum):
    """Queue priority. `urgent` is what the immediate send commands use; callers pick the others."""

    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Smaller goes first."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3}

QueuedPriority = Literal["high", "normal", "low"]
"""What `queue-message` accepts: `urgent` is reserved to immediate sends so bulk never jumps them."""


class JobState(StrEnum):
    """Life of an outgoing job. `pending`: due, waiting for limits; `scheduled`: not before a later time
    (caller's time, a retry backoff or a flood wait); `in_flight`: handed to tg-session under a lease;
    then exactly one of the terminal states."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    IN_FLIGHT = "in_flight"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobState.SENT, JobState.FAILED, JobState.SKIPPED, JobState.CANCELLED})
WAITING_STATES: tuple[JobState, ...] = (JobState.PENDING, JobState.SCHEDULED)


class JobReason(StrEnum):
    """Why a job is waiting, was skipped, failed or was cancelled (machine-readable; `lastError` has text)."""

    # waiting
    RATE_LIMIT = "rate_limit"
    FLOOD_WAIT = "flood_wait"
    PEER_FLOOD = "peer_flood"
    QUIET_HOURS = "quiet_hours"
    PAUSED = "paused"
    RETRY_BACKOFF = "retry_backoff"
    ACCOUNT_UNAVAILABLE = "account_unavailable"
    MISSING_VARIABLE = "missing_variable"  # a template's recipient fact nobody knows yet
    # skipped: compliance, decided before any send
    BLACKLISTED = "blacklisted"
    OPTED_OUT = "opted_out"
    RECIPIENT_CAP = "recipient_cap"
    DO_NOT_CONTACT = "do_not_contact"
    ALREADY_CONTACTED = "already_contacted"
    EXPIRED = "expired"
    # failed: will not heal
    USER_DEACTIVATED = "user_deactivated"
    PRIVACY_RESTRICTED = "privacy_restricted"
    PEER_INVALID = "peer_invalid"
    CHAT_WRITE_FORBIDDEN = "chat_write_forbidden"
    TEMPLATE_ERROR = "template_error"
    INVALID_MESSAGE = "invalid_message"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    NO_ACCOUNT = "no_account"
    # cancelled
    CLEARED = "cleared"
    CAMPAIGN_STOPPED = "campaign_stopped"


class LimitKind(StrEnum):
    """A limit the scheduler checks before every dispatch (settings section `pacing`)."""

    ACCOUNT_MINUTE = "account_minute"
    ACCOUNT_HOUR = "account_hour"
    ACCOUNT_DAILY_NON_CONTACTS = "account_daily_non_contacts"
    WARMUP = "warmup"
    PER_CHAT = "per_chat"
    PER_GROUP = "per_group"
    API_CREDENTIAL = "api_credential"
    GLOBAL = "global"
    QUIET_HOURS = "quiet_hours"
    JITTER = "jitter"
    FLOOD_WAIT = "flood_wait"
    PEER_FLOOD = "peer_flood"
    RECIPIENT_CAP = "recipient_cap"


class LeadStage(StrEnum):
    """Funnel stages of a lead, in funnel order (the earlier client's `New|Contacted|Replied|Follow-up|
    Closed-Won|Closed-Lost`); the same values as `models.ai.FunnelStage`."""

    NEW = "new"
    CONTACTED = "contacted"
    REPLIED = "replied"
    FOLLOW_UP = "follow_up"
    CLOSED_WON = "closed_won"
    CLOSED_LOST = "closed_lost"


IntentLevel = Literal["hot", "warm", "neutral", "cold", "none"]
LeadSource = Literal["keyword", "group_member", "private_message", "manual", "import", "campaign", "ai"]


class CampaignStatus(StrEnum):
    """Status of an automation campaign or an ad campaign."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"


class CollaborationStatus(StrEnum):
    """A scripted multi-account conversation (the earlier client's `CollaborationGroup.status`)."""

    CREATING = "creating"
    INVITING = "inviting"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"


class SwarmStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class TimeWindow(Request):
    """A daily window in local time."""

    start: HHMM
    end: HHMM = Field(description="May be before start: the window then crosses midnight.")
    timezone: str | None = Field(None, max_length=64, description="IANA zone; general.timezone when null.")


# --- peers and accounts --------------------------------------------------------------------------


def peer_key(peer: int | str) -> str:
    """Canonical identity of a (normalised) peer for dedupe, blacklists and per-recipient caps."""
    return f"id:{peer}" if isinstance(peer, int) else peer.lower()


def is_chat_peer(peer: int | str) -> bool:
    """A negative id is a group or channel; a positive id, a `+phone` is a user; `@name` may be either."""
    return isinstance(peer, int) and peer < 0


def is_user_peer(peer: int | str) -> bool:
    return (isinstance(peer, int) and peer > 0) or (isinstance(peer, str) and peer.startswith("+"))


class PeerView(Response):
    """A resolved peer as campaign knows it."""

    kind: Literal["user", "group", "channel", "unknown"] = "unknown"
    user_id: int | None = None
    chat_id: int | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = Field(None, description="Group or channel title.")


AccountStrategy = Literal["health_first", "least_used", "round_robin", "random"]


class AccountPool(Request):
    """A set of accounts any healthy one of which may send; the scheduler spreads load across them and
    moves jobs off an account that gets limited. Filters combine; none means every healthy account."""

    account_ids: list[AccountId] | None = Field(None, min_length=1, max_length=1000)
    groups: list[GroupName] | None = Field(None, min_length=1, description="Account groups (tg-session).")
    roles: list[RoleField] | None = Field(None, min_length=1, description="Account roles, e.g. `sender`.")
    tags: list[TagName] | None = Field(None, min_length=1, description="Accounts carrying any of these tags.")
    strategy: AccountStrategy = "health_first"


class AccountChoice(Request):
    """A fixed account (`accountId`) or a pool; neither means the default pool (every healthy account)."""

    account_id: AccountId | None = Field(None, description="Send from exactly this account.")
    pool: AccountPool | None = None

    @model_validator(mode="after")
    def _account_or_pool(self) -> AccountChoice:
        if self.account_id is not None and self.pool is not None:
            raise ValueError("give accountId or pool, not both")
        return self


# --- message bodies ------------------------------------------------------------------------------

Variables = Annotated[
    dict[VariableName, Annotated[str, Field(max_length=1000)]],
    Field(max_length=50, description="Template variables for this message; override recipient values."),
]


class Attachment(Request):
    """A file sent with the message; `text` becomes its caption (Telegram caps captions at 1024)."""

    kind: Literal["photo", "document", "video", "audio", "voice"] = "document"
    file_name: str | None = Field(None, max_length=255)
    url: HttpUrlStr | None = None
    data_url: str | None = Field(
        None,
        max_length=700_000,
        pattern=r"^data:[\w.+-]+/[\w.+-]+;base64,",
        description="Inline base64 for small files (NATS messages stay under 1 MB); otherwise use url.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Attachment:
        if count_set(self, "url", "data_url") != 1:
            raise ValueError("give exactly one of url or dataUrl")
        return self


class MessageBody(Request):
    """What to send: literal `text`, or a template rendered per recipient, and/or an attachment."""

    text: str | None = Field(
        None, min_length=1, max_length=8192, description="May use variables and spintax; rendered ≤ 4096."
    )
    template_id: Id | None = Field(None, description="Render this template instead of `text`.")
    variables: Variables = Field(default_factory=dict)
    attachment: Attachment | None = None
    parse_mode: Literal["plain", "markdown", "html"] = "plain"
    link_preview: bool = True
    silent: bool = Field(False, description="Deliver without a notification.")

    @model_validator(mode="after")
    def _has_content(self) -> MessageBody:
        if self.text is not None and self.template_id is not None:
            raise ValueError("give text or templateId, not both")
        if self.text is None and self.template_id is None and self.attachment is None:
            raise ValueError("give text, templateId or attachment")
        return self


# --- jobs and the queue --------------------------------------------------------------------------


class JobAttempt(Response):
    """One dispatch of a job or one decision about it, in order; the audit trail of every send."""

    at: datetime
    account_id: str | None = None
    outcome: Literal["sent", "failed", "flood_wait", "peer_flood", "skipped", "requeued", "cancelled"]
    reason: JobReason | None = None
    error: str | None = Field(None, description="Telegram error name or message, never secrets.")
    retry_at: datetime | None = None


class JobView(Response):
    """One outgoing message job."""

    job_id: str
    state: JobState
    reason: JobReason | None = Field(
        None, description="Why it waits, or why it was skipped/failed/cancelled."
    )
    priority: Priority
    kind: Literal["private", "group"] = "private"
    peer: PeerRef
    lead_id: str | None = None
    account_id: str | None = Field(None, description="The fixed account, or the account that took the job.")
    pool: AccountPool | None = None
    campaign_id: str | None = None
    batch_id: str | None = Field(None, description="The `queue-message` call that created it.")
    idempotency_key: str
    template_id: str | None = None
    text: str | None = Field(None, description="The rendered text once rendered (at dispatch).")
    has_attachment: bool = False
    not_before: datetime | None = Field(None, description="Earliest send time (caller's, backoff or flood).")
    expires_at: datetime | None = None
    attempts: int = 0
    max_attempts: int = 3
    last_error: str | None = None
    message_id: int | None = Field(None, description="Telegram message id once sent.")
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None
    history: list[JobAttempt] = Field(default_factory=list)


class QueueCounts(Response):
    pending: int = 0
    scheduled: int = 0
    in_flight: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    oldest_pending_age_seconds: float | None = Field(None, description="Age of the oldest due, unsent job.")


class ActiveLimit(Response):
    """A limit currently holding an account back."""

    kind: LimitKind
    until: datetime | None = Field(None, description="When it stops holding, where known.")
    used: int | None = None
    cap: int | None = None
    detail: str | None = None


class AccountQueueRow(QueueCounts):
    account_id: str
    paused: bool = False
    next_allowed_at: datetime | None = Field(None, description="Earliest time every limit allows a send.")
    limits: list[ActiveLimit] = Field(default_factory=list)
    sent_today: int = Field(0, description="Every message the account sent since local midnight.")
    daily_cap: int | None = Field(
        None,
        description="First messages to people who never wrote to the account, allowed in any 24 h "
        "(warm-up or `perAccountDailyNonContacts`): compare with `recentNonContacts`, not `sentToday`.",
    )
    recent_non_contacts: int = Field(0, description="First messages to strangers in the last 24 h.")
    cooldown_until: datetime | None = Field(None, description="PEER_FLOOD cool-down end.")


class CampaignQueueRow(QueueCounts):
    campaign_id: str
    paused: bool = False


QueueScopeKind = Literal["all", "account", "campaign"]


class QueueScope(Request):
    """Which jobs a queue command acts on: the whole queue, one account's jobs or one campaign's jobs."""

    scope: QueueScopeKind = "all"
    account_id: AccountId | None = None
    campaign_id: Id | None = None

    @model_validator(mode="after")
    def _scope_fields(self) -> QueueScope:
        need = {"all": "no accountId or campaignId", "account": "accountId", "campaign": "campaignId"}
        want = {"all": set(), "account": {"account_id"}, "campaign": {"campaign_id"}}[self.scope]
        given = {n for n in ("account_id", "campaign_id") if getattr(self, n) is not None}
        if given != want:
            raise ValueError(f"scope {self.scope!r} takes {need[self.scope]}")
        return self


class PauseView(Response):
    """A pause in force."""

    scope: QueueScopeKind
    account_id: str | None = None
    campaign_id: str | None = None
    paused_at: datetime
    until: datetime | None = Field(None, description="Resumes by itself at this time.")
    reason: str | None = None
    by: str | None = Field(None, description="Principal who paused.")


# --- templates -----------------------------------------------------------------------------------

TemplateCategory = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        pattern=r"^[a-z0-9_-]+$",
        description="Free category; known: `custom`, `greeting`, `follow_up`, `reply`, `ad`.",
    ),
]


class TemplateVariable(Request):
    name: VariableName
    default: str | None = Field(None, max_length=1000, description="Used when no value is given.")
    description: str | None = Field(None, max_length=200)


class TemplateSpec(Request):
    name: str = Field(min_length=1, max_length=100)
    category: TemplateCategory = "custom"
    content: str = Field(min_length=1, max_length=8192, description="Text with variables and spintax.")
    variables: list[TemplateVariable] = Field(default_factory=list, max_length=50)
    is_active: bool = True

    @model_validator(mode="after")
    def _unique_variables(self) -> TemplateSpec:
        names = [v.name for v in self.variables]
        if len(names) != len(set(names)):
            raise ValueError("variable names must be unique")
        return self


class TemplateView(TemplateSpec, Response):
    model_config = Response.model_config

    id: str
    usage_count: int = 0
    success_rate: float | None = Field(None, ge=0, le=1, description="Sent / (sent + failed) of its jobs.")
    last_used_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class TemplatePreview(Response):
    """A template rendered for a sample recipient, several times to show spintax variety."""

    samples: list[str]
    variables_used: list[str] = Field(default_factory=list)
    missing_variables: list[str] = Field(
        default_factory=list, description="No value and no default: a real send would fail."
    )
    variants: int = Field(1, ge=1, description="Distinct spintax combinations (capped at 1,000,000).")
    min_length: int = 0
    max_length: int = 0
    warnings: list[str] = Field(default_factory=list, description="E.g. longer than 4096 after rendering.")


class PreviewInput(Request):
    """Sample values for a preview."""

    variables: Variables = Field(default_factory=dict)
    recipient: PeerView | None = Field(None, description="Sample recipient for first_name, username, ….")
    samples: int = Field(3, ge=1, le=20)
    seed: int | None = Field(None, description="Fixes spintax choices, for repeatable previews.")


# --- chat history --------------------------------------------------------------------------------


class ChatMessageView(Response):
    """One message of a conversation between a fleet account and a peer."""

    id: str
    account_id: str
    peer: PeerView
    direction: Literal["in", "out"]
    message_id: int | None = Field(None, description="Telegram message id.")
    text: str | None = None
    media_kind: str | None = None
    date: datetime
    job_id: str | None = Field(None, description="The queue job that sent it, for outgoing messages.")
    source: Literal["telegram", "queue", "import", "manual"] = "telegram"
    reply_to_message_id: int | None = None


class ConversationView(Response):
    """A private conversation: one account with one user."""

    account_id: str
    peer: PeerView
    last_message: ChatMessageView | None = None
    message_count: int = 0
    unread_count: int = Field(0, description="Incoming messages after the last outgoing one.")
    last_in_at: datetime | None = None
    last_out_at: datetime | None = None
    lead_id: str | None = None
    lead_stage: LeadStage | None = None
    blacklisted: bool = False
    opted_out: bool = False


# --- leads ---------------------------------------------------------------------------------------


class StageChange(Response):
    from_stage: LeadStage | None = None
    to_stage: LeadStage
    at: datetime
    by: str | None = Field(None, description="Principal, or `system`, `ai`, `trigger:<id>`.")
    reason: str | None = None


class LeadView(Response):
    """A lead: a Telegram user the fleet is working, one per user."""

    id: str
    user_id: int | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    stage: LeadStage = LeadStage.NEW
    stage_changed_at: datetime | None = None
    source_type: LeadSource = "manual"
    source_group_id: str | None = Field(None, description="Monitored group it came from.")
    source_chat_id: int | None = None
    source_chat_title: str | None = None
    triggered_keyword: str | None = None
    keyword_set_id: str | None = None
    campaign_id: str | None = None
    intent_score: int | None = Field(None, ge=0, le=100)
    intent_level: IntentLevel = "none"
    tags: list[str] = Field(default_factory=list)
    notes: str | None = None
    custom_fields: dict[str, CustomFieldValue] = Field(default_factory=dict)
    assigned_account_id: str | None = Field(None, description="The account that talks to this lead.")
    assignee: str | None = Field(None, description="The human (principal) who owns this lead.")
    do_not_contact: bool = False
    blacklisted: bool = False
    message_count: int = 0
    last_contacted_at: datetime | None = None
    last_replied_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


def compile_regex(pattern: str) -> str:
    """Validate a user regex: it must compile; used by keyword and trigger models."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return pattern


class MonitoredChats(Response):
    """What automation watches: the value of `streams.MONITORED_CHATS` (key `chats`).

    Campaign writes it whenever monitoring starts or stops, or a watched group changes; tg-session
    watches the key and publishes `message-received` for group messages (and `member-joined`) only
    of these chats. Private messages are published whatever this says.
    """

    active: bool = Field(description="Monitoring is on; when false no group message is published.")
    chat_ids: list[int] = Field(default_factory=list, description="Resolved chats (-100… ids).")
    usernames: list[str] = Field(
        default_factory=list, description="Lower-case, no `@`: groups known by username, not yet by id."
    )
    revision: int = Field(0, description="Grows with every write (for logs and tests).")
    updated_at: datetime
