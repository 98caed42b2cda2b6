"""The 18 campaign-owned `messaging` commands: sends, the durable queue, templates and chat history.

Every outgoing message is a job in campaign's queue (ARCHITECTURE.md section 7). The four `send-*`
commands enqueue one job at top priority and answer when it is delivered or refused (or when
`waitSeconds` passes, with the job still queued); `queue-message` enqueues many and answers at once.
Pacing, blacklists, opt-outs and per-recipient caps apply to every job alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field, model_validator

from ..base import Ack, Confirmed, Id, Page, PageRequest, Request, Response
from ..command import Command
from ..enums import Domain, Role, Service
from ..models.campaign import (
    AccountChoice,
    AccountQueueRow,
    CampaignQueueRow,
    ChatMessageView,
    ConversationView,
    IdempotencyKey,
    JobReason,
    JobState,
    JobView,
    LeadStage,
    MessageBody,
    PauseView,
    PeerRef,
    PreviewInput,
    QueueCounts,
    QueuedPriority,
    QueueScope,
    QueueScopeKind,
    TemplateCategory,
    TemplatePreview,
    TemplateSpec,
    TemplateView,
    Variables,
    is_chat_peer,
)
from ..models.session import AccountId, ChatRef

C = Service.CAMPAIGN
MESSAGING = Domain.MESSAGING

# --- immediate sends -----------------------------------------------------------------------------


class SendOptions(Request):
    idempotency_key: IdempotencyKey | None = Field(
        None, description="Resending with the same key answers with the first job; defaults to a new job."
    )
    campaign_id: Id | None = None
    wait_seconds: float = Field(
        30.0, ge=0, le=55, description="Answer by then at the latest; the job stays queued if not yet sent."
    )
    expires_at: AwareDatetime | None = Field(None, description="Skip (reason `expired`) if not sent by then.")


class SendMessageRequest(SendOptions, MessageBody, AccountChoice):
    """To a peer or to a lead (whose user, and assigned account when none is chosen, are used)."""

    peer: PeerRef | None = None
    lead_id: Id | None = Field(
        None, description="Send to this lead; delivery moves a `new` lead to `contacted`."
    )

    @model_validator(mode="after")
    def _peer_or_lead(self) -> SendMessageRequest:
        if (self.peer is None) == (self.lead_id is None):
            raise ValueError("give exactly one of peer or leadId")
        return self


class SendResult(Response):
    """Outcome of an immediate send: `sent` with the Telegram message id, a refusal (`skipped`/`failed`
    with the reason), or the job still waiting (`pending`/`scheduled`/`in_flight`) when `waitSeconds`
    passed first."""

    job_id: str
    state: JobState
    reason: JobReason | None = None
    message_id: int | None = None
    account_id: str | None = None
    peer: PeerRef
    sent_at: datetime | None = None
    retry_at: datetime | None = Field(None, description="When a waiting job is next due.")
    last_error: str | None = None
    duplicate: bool = Field(False, description="The idempotency key matched an existing job.")


class SendMessage(
    Command,
    name="send-message",
    owner=C,
    domain=MESSAGING,
    role=Role.OPERATOR,
    request=SendMessageRequest,
    response=SendResult,
    timeout=60,
):
    """Send a message to a user, chat or lead now, through the queue at top priority."""


def _user_peer(peer: int | str) -> None:
    if is_chat_peer(peer):
        raise ValueError("peer must be a user (user id, @username or +phone), not a chat")


class SendPrivateMessageRequest(SendOptions, MessageBody):
    """A reply inside an account's existing private conversation, so the account is fixed."""

    account_id: AccountId
    peer: PeerRef
    reply_to_message_id: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _user(self) -> SendPrivateMessageRequest:
        _user_peer(self.peer)
        return self


class SendPrivateMessage(
    Command,
    name="send-private-message",
    owner=C,
    domain=MESSAGING,
    role=Role.OPERATOR,
    request=SendPrivateMessageRequest,
    response=SendResult,
    timeout=60,
):
    """Reply to a user in a private chat from the account that holds the conversation."""


class SendDirectMessageRequest(SendOptions, MessageBody, AccountChoice):
    """First contact with a user (counts against the daily non-contact cap of the sending account)."""

    peer: PeerRef
    skip_if_contacted: bool = Field(
        False, description="Skip when any fleet account already has a conversation with this user."
    )

    @model_validator(mode="after")
    def _user(self) -> SendDirectMessageRequest:
        _user_peer(self.peer)
        return self


class SendDirectMessage(
    Command,
    name="send-direct-message",
    owner=C,
    domain=MESSAGING,
    role=Role.OPERATOR,
    request=SendDirectMessageRequest,
    response=SendResult,
    timeout=60,
    example={"peer": "@customer", "text": "您好！請問有什麼可以幫您？"},
):
    """Send a first direct message to a user from a fixed account or a pool."""


class SendGroupMessageRequest(SendOptions, MessageBody, AccountChoice):
    """To a group: a monitored group by id, or any group the sending account is a member of."""

    group_id: Id | None = Field(None, description="A monitored group (get-monitored-groups).")
    group: ChatRef | None = Field(None, description="A group the account is in: id, @username or link.")
    reply_to_message_id: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _group(self) -> SendGroupMessageRequest:
        if (self.group_id is None) == (self.group is None):
            raise ValueError("give exactly one of groupId or group")
        return self


class SendGroupMessage(
    Command,
    name="send-group-message",
    owner=C,
    domain=MESSAGING,
    role=Role.OPERATOR,
    request=SendGroupMessageRequest,
    response=SendResult,
    timeout=60,
):
    """Post a message in a group now, within the per-group limits."""


# --- the queue -----------------------------------------------------------------------------------


class Recipient(Request):
    peer: PeerRef | None = None
    lead_id: Id | None = None
    variables: Variables = Field(
        default_factory=dict, description="Per-recipient values; override the batch's."
    )
    idempotency_key: IdempotencyKey | None = Field(
        None, description="This job's key; by default `<batch idempotencyKey>:<peer key or leadId>`."
    )

    @model_validator(mode="after")
    def _peer_or_lead(self) -> Recipient:
        if (self.peer is None) == (self.lead_id is None):
            raise ValueError("give exactly one of peer or leadId")
        return self


class QueueMessageRequest(MessageBody, AccountChoice):
    """One job per recipient. Jobs keep their order of creation within a priority."""

    recipients: list[Recipient] = Field(min_length=1, max_length=10_000)
    priority: QueuedPriority = "normal"
    not_before: AwareDatetime | None = Field(None, description="Earliest send time; now when omitted.")
    expires_at: AwareDatetime | None = Field(
        None, description="Skip jobs (reason `expired`) not sent by then."
    )
    idempotency_key: IdempotencyKey | None = Field(
        None, description="Batch key; defaults to the request id, so a retried request creates nothing new."
    )
    campaign_id: Id | None = None
    max_attempts: int = Field(3, ge=1, le=10)
    dedupe_recipients: bool = Field(True, description="Drop repeated recipients within this batch.")

    @model_validator(mode="after")
    def _times(self) -> QueueMessageRequest:
        if self.not_before and self.expires_at and self.expires_at <= self.not_before:
            raise ValueError("expiresAt must be after notBefore")
        return self


class EnqueuedJob(Response):
    index: int = Field(description="Position in `recipients`.")
    job_id: str | None = Field(
        None, description="Null when the recipient was dropped as a duplicate in-batch."
    )
    idempotency_key: str | None = None
    state: JobState | None = None
    reason: JobReason | None = Field(
        None, description="Set when skipped at enqueue (blacklisted, opted out)."
    )
    duplicate: bool = Field(
        False, description="An existing job had this key; it is returned, not re-created."
    )


class QueueMessageResult(Response):
    batch_id: str
    created: int
    duplicates: int
    skipped: int
    jobs: list[EnqueuedJob]


class QueueMessage(
    Command,
    name="queue-message",
    owner=C,
    domain=MESSAGING,
    role=Role.OPERATOR,
    request=QueueMessageRequest,
    response=QueueMessageResult,
    timeout=60,
):
    """Enqueue a scheduled or bulk send: one durable job per recipient."""


class GetQueueStatusRequest(PageRequest):
    """Totals and per-account rows always; the jobs themselves when `includeJobs` (cursor-paged)."""

    account_id: AccountId | None = Field(None, description="Only this account's row and jobs.")
    campaign_id: Id | None = Field(None, description="Only this campaign's jobs.")
    include_jobs: bool = False
    states: list[JobState] | None = Field(None, min_length=1, description="Jobs in these states only.")
    job_id: Id | None = None
    batch_id: Id | None = None
    peer: PeerRef | None = None
    lead_id: Id | None = None


class QueueStatus(Response):
    totals: QueueCounts
    paused: bool = Field(description="The whole queue is paused.")
    pauses: list[PauseView] = Field(default_factory=list)
    accounts: list[AccountQueueRow] = Field(default_factory=list)
    campaigns: list[CampaignQueueRow] = Field(default_factory=list)
    sends_last_minute: int = 0
    sends_last_hour: int = 0
    generated_at: datetime
    jobs: Page[JobView] | None = None


class GetQueueStatus(
    Command,
    name="get-queue-status",
    owner=C,
    domain=MESSAGING,
    role=Role.VIEWER,
    request=GetQueueStatusRequest,
    response=QueueStatus,
):
    """Queue totals, per-account pacing state (next allowed send, active limits) and jobs."""


class PauseQueueRequest(QueueScope):
    until: AwareDatetime | None = Field(None, description="Resume by itself at this time.")
    reason: str | None = Field(None, max_length=300)


class QueueControlResult(Response):
    scope: QueueScopeKind
    account_id: str | None = None
    campaign_id: str | None = None
    paused: bool
    waiting_jobs: int = Field(0, description="Pending and scheduled jobs in the scope.")
    pauses: list[PauseView] = Field(default_factory=list, description="Every pause now in force.")


class PauseQueue(
    Command,
    name="pause-queue",
    owner=C,
    domain=MESSAGING,
    role=Role.OPERATOR,
    request=PauseQueueRequest,
    response=QueueControlResult,
):
    """Hold dispatch of the whole queue, one account's jobs or one campaign's jobs; in-flight sends finish."""


class ResumeQueue(
    Command,
    name="resume-queue",
    owner=C,
    domain=MESSAGING,
    role=Role.OPERATOR,
    request=QueueScope,
    response=QueueControlResult,
):
    """Lift the pause of the same scope (other pauses stay in force)."""


WaitingState = Literal["pending", "scheduled"]


def _waiting_states() -> list[WaitingState]:
    return ["pending", "scheduled"]


class ClearQueueRequest(Confirmed, QueueScope):
    DESTROYS: ClassVar[str] = "cancels every waiting job of the scope (the whole queue when none is given)"

    states: list[WaitingState] = Field(
        default_factory=_waiting_states,
        min_length=1,
        description="Which waiting jobs to cancel; in-flight jobs are never touched.",
    )
    reason: str | None = Field(None, max_length=300)


class ClearQueueResult(Response):
    cancelled: int
    in_flight_untouched: int = Field(0, description="Jobs in the scope already in flight, left to finish.")


class ClearQueue(
    Command,
    name="clear-queue",
    owner=C,
    domain=MESSAGING,
    role=Role.ADMIN,
    request=ClearQueueRequest,
    response=ClearQueueResult,
):
    """Cancel the waiting jobs of a scope (kept, state `cancelled`, reason `cleared`)."""


# --- templates -----------------------------------------------------------------------------------


class TemplateSaveOptions(Request):
    dry_run: bool = Field(False, description="Validate and preview only; nothing is saved.")
    preview: PreviewInput = Field(default_factory=PreviewInput)


class AddTemplateRequest(TemplateSaveOptions, TemplateSpec):
    pass


class TemplateSaveResult(Response):
    template: TemplateView | None = Field(None, description="Null on a dry run.")
    preview: TemplatePreview


class AddTemplate(
    Command,
    name="add-template",
    owner=C,
    domain=MESSAGING,
    role=Role.OPERATOR,
    request=AddTemplateRequest,
    response=TemplateSaveResult,
):
    """Create a message template (CONFLICT if the name exists) and answer with a rendered preview."""


class TemplateIdRequest(Request):
    id: Id


class RemoveTemplate(
    Command,
    name="remove-template",
    owner=C,
    domain=MESSAGING,
    role=Role.ADMIN,
    request=TemplateIdRequest,
    response=Ack,
):
    """Delete a template; queued jobs already rendered from it are unaffected."""


class ToggleTemplateStatusRequest(Request):
    id: Id
    is_active: bool | None = Field(None, description="The new state; flips the current one when omitted.")


class ToggleTemplateStatus(
    Command,
    name="toggle-template-status",
    owner=C,
    domain=MESSAGING,
    role=Role.OPERATOR,
    request=ToggleTemplateStatusRequest,
    response=TemplateView,
):
    """Activate or deactivate a template (inactive ones cannot be used by new jobs)."""


class GetChatTemplatesRequest(Request):
    category: TemplateCategory | None = None
    active_only: bool = False
    search: str | None = Field(None, min_length=1, max_length=100, description="In name and content.")
    ids: list[Id] | None = Field(None, min_length=1, max_length=500)


class GetChatTemplates(
    Command,
    name="get-chat-templates",
    owner=C,
    domain=MESSAGING,
    role=Role.VIEWER,
    request=GetChatTemplatesRequest,
    response=Page[TemplateView],
):
    """List templates with their usage and success rate."""


class SaveChatTemplateRequest(TemplateSaveOptions, TemplateSpec):
    id: Id | None = Field(None, description="Update this template; create one when omitted.")
    expected_updated_at: datetime | None = Field(
        None, description="Optimistic concurrency: CONFLICT if the template changed since."
    )


class SaveChatTemplate(
    Command,
    name="save-chat-template",
    owner=C,
    domain=MESSAGING,
    role=Role.OPERATOR,
    request=SaveChatTemplateRequest,
    response=TemplateSaveResult,
):
    """Create or update a template and answer with a rendered preview."""


class DeleteChatTemplate(
    Command,
    name="delete-chat-template",
    owner=C,
    domain=MESSAGING,
    role=Role.ADMIN,
    request=TemplateIdRequest,
    response=Ack,
):
    """Delete a template."""


# --- chat history --------------------------------------------------------------------------------


class GetChatHistoryRequest(PageRequest):
    """One conversation, newest first by default. Give a peer or a lead."""

    account_id: AccountId | None = Field(
        None, description="One account's side; every account's when omitted."
    )
    peer: PeerRef | None = None
    lead_id: Id | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    search: str | None = Field(None, min_length=1, max_length=200)
    order: Literal["newest_first", "oldest_first"] = "newest_first"

    @model_validator(mode="after")
    def _peer_or_lead(self) -> GetChatHistoryRequest:
        if (self.peer is None) == (self.lead_id is None):
            raise ValueError("give exactly one of peer or leadId")
        return self


class GetChatHistory(
    Command,
    name="get-chat-history",
    owner=C,
    domain=MESSAGING,
    role=Role.VIEWER,
    request=GetChatHistoryRequest,
    response=Page[ChatMessageView],
):
    """Messages between the fleet and one peer, by cursor page."""


class ChatMessageInput(Request):
    direction: Literal["in", "out"]
    text: str | None = Field(None, max_length=8192)
    date: AwareDatetime
    message_id: int | None = Field(None, gt=0, description="Telegram id; the dedupe key when given.")
    media_kind: Literal["photo", "document", "video", "audio", "voice", "sticker", "other"] | None = None
    reply_to_message_id: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _content(self) -> ChatMessageInput:
        if self.text is None and self.media_kind is None:
            raise ValueError("give text or mediaKind")
        return self


class SaveChatHistoryRequest(Request):
    """Record messages exchanged outside the queue (imports, notes of a manual chat)."""

    account_id: AccountId
    peer: PeerRef
    messages: list[ChatMessageInput] = Field(min_length=1, max_length=1000)
    source: Literal["import", "manual"] = "import"


class SaveChatHistoryResult(Response):
    saved: int
    duplicates: int = Field(description="Already stored (same message id, or same direction, time and text).")


class SaveChatHistory(
    Command,
    name="save-chat-history",
    owner=C,
    domain=MESSAGING,
    role=Role.OPERATOR,
    request=SaveChatHistoryRequest,
    response=SaveChatHistoryResult,
):
    """Add messages to a conversation's history, idempotently."""


class GetPrivateMessagesRequest(PageRequest):
    """Private conversations, most recently active first."""

    account_id: AccountId | None = None
    unread_only: bool = Field(False, description="Only conversations whose last message is incoming.")
    lead_stages: list[LeadStage] | None = Field(None, min_length=1)
    since: AwareDatetime | None = Field(None, description="Active since.")
    search: str | None = Field(None, min_length=1, max_length=200, description="In names, usernames, text.")


class GetPrivateMessages(
    Command,
    name="get-private-messages",
    owner=C,
    domain=MESSAGING,
    role=Role.VIEWER,
    request=GetPrivateMessagesRequest,
    response=Page[ConversationView],
):
    """Private conversations per account and peer, with their last message."""
