"""The 15 campaign-owned `contacts` commands: leads and their funnel, tracked users, and the blacklist.

A lead is one Telegram user the fleet works (one lead per user). Its `stage` is its place in the
funnel; `update-lead-stage` moves one lead, `update-funnel-stage` moves many. Tracked users are
users whose activity (group messages, private messages, keyword matches, stage changes, sends) is
kept and shown by `get-user-activity`. Blacklisted users are never messaged by any account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, AwareDatetime, Field, model_validator

from ..base import Ack, Id, Page, PageRequest, Request, Response
from ..command import Command
from ..enums import Domain, Role, Service
from ..models.campaign import (
    ChatMessageView,
    CustomFieldValue,
    IntentLevel,
    JobView,
    LeadSource,
    LeadStage,
    LeadView,
    StageChange,
    Tag,
    UserId,
    Username,
)
from ..models.session import AccountId, Phone

C = Service.CAMPAIGN
CONTACTS = Domain.CONTACTS

CustomFields = dict[str, CustomFieldValue]

# --- leads ---------------------------------------------------------------------------------------


class AddLeadRequest(Request):
    """The earlier client's `add-lead` fields (`user_id`, `source_chat_title`, … in camelCase)."""

    user_id: UserId | None = None
    username: Username | None = None
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    phone: Phone | None = None
    stage: LeadStage = LeadStage.NEW
    source_type: LeadSource = "manual"
    source_chat_id: int | None = None
    source_chat_title: str | None = Field(None, max_length=255)
    notes: str | None = Field(None, max_length=5000)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    custom_fields: CustomFields = Field(default_factory=dict, max_length=100)
    assigned_account_id: AccountId | None = None
    if_exists: Literal["error", "return", "merge"] = Field(
        "error",
        description="When the user is already a lead: CONFLICT, answer with it unchanged, or merge the"
        " given fields into it.",
    )

    @model_validator(mode="after")
    def _identity(self) -> AddLeadRequest:
        if self.user_id is None and self.username is None and self.phone is None:
            raise ValueError("give userId, username or phone")
        return self


class AddLead(
    Command,
    name="add-lead",
    owner=C,
    domain=CONTACTS,
    role=Role.OPERATOR,
    request=AddLeadRequest,
    response=LeadView,
):
    """Add a user as a lead by hand."""


class LeadIdRequest(Request):
    lead_id: Id


class DeleteLead(
    Command,
    name="delete-lead",
    owner=C,
    domain=CONTACTS,
    role=Role.ADMIN,
    request=LeadIdRequest,
    response=Ack,
):
    """Delete a lead and its stage history; its waiting jobs are cancelled (the blacklist is kept)."""


class GetLeadsRequest(PageRequest):
    stages: list[LeadStage] | None = Field(None, min_length=1)
    tags: list[Tag] | None = Field(None, min_length=1, description="Leads with all of these tags.")
    search: str | None = Field(None, min_length=1, max_length=100, description="Names, username, notes.")
    source_type: LeadSource | None = None
    source_group_id: Id | None = None
    keyword_set_id: Id | None = None
    campaign_id: Id | None = None
    assigned_account_id: AccountId | None = None
    assignee: str | None = Field(None, max_length=100)
    intent_levels: list[IntentLevel] | None = Field(None, min_length=1)
    include_do_not_contact: bool = True
    created_since: AwareDatetime | None = None
    created_until: AwareDatetime | None = None
    sort: Literal["created_at", "updated_at", "intent_score", "last_contacted_at"] = "created_at"
    descending: bool = True


class GetLeads(
    Command,
    name="get-leads",
    owner=C,
    domain=CONTACTS,
    role=Role.VIEWER,
    request=GetLeadsRequest,
    response=Page[LeadView],
):
    """Search and page leads (with the total count)."""


class LeadDetails(LeadView):
    stage_history: list[StageChange] = Field(default_factory=list)
    recent_messages: list[ChatMessageView] = Field(default_factory=list, description="Newest first, ≤ 20.")
    recent_jobs: list[JobView] = Field(default_factory=list, description="Newest first, ≤ 20.")
    matched_keywords: list[str] = Field(default_factory=list)
    tracked: bool = False


class GetLeadDetails(
    Command,
    name="get-lead-details",
    owner=C,
    domain=CONTACTS,
    role=Role.VIEWER,
    request=LeadIdRequest,
    response=LeadDetails,
):
    """One lead with its stage history, recent messages and recent jobs."""


class UpdateLeadRequest(Request):
    """A patch: fields not sent are unchanged; a nullable field sent as null is cleared."""

    lead_id: Id
    username: Username | None = None
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    phone: Phone | None = None
    notes: str | None = Field(None, max_length=5000)
    tags: list[Tag] | None = Field(None, max_length=50, description="Replaces the tags.")
    custom_fields: CustomFields | None = Field(
        None, max_length=100, description="Merged; a null value deletes."
    )
    intent_score: int | None = Field(None, ge=0, le=100)
    intent_level: IntentLevel | None = None
    do_not_contact: bool | None = None
    expected_updated_at: datetime | None = Field(None, description="CONFLICT if the lead changed since.")

    @model_validator(mode="after")
    def _something(self) -> UpdateLeadRequest:
        if not (self.model_fields_set - {"lead_id", "expected_updated_at"}):
            raise ValueError("give at least one field to change")
        return self


class UpdateLead(
    Command,
    name="update-lead",
    owner=C,
    domain=CONTACTS,
    role=Role.OPERATOR,
    request=UpdateLeadRequest,
    response=LeadView,
):
    """Change a lead's details (stage has its own commands)."""


class UpdateLeadStageRequest(Request):
    lead_id: Id
    stage: LeadStage
    reason: str | None = Field(None, max_length=500)


class UpdateLeadStage(
    Command,
    name="update-lead-stage",
    owner=C,
    domain=CONTACTS,
    role=Role.OPERATOR,
    request=UpdateLeadStageRequest,
    response=LeadView,
):
    """Move one lead to a stage, recording who, when and why."""


class UpdateFunnelStageRequest(Request):
    """Move many leads, named by lead id or by Telegram user id (the earlier client's `userId`)."""

    lead_ids: list[Id] | None = Field(None, min_length=1, max_length=1000)
    user_ids: list[UserId] | None = Field(None, min_length=1, max_length=1000)
    stage: LeadStage
    reason: str | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _one(self) -> UpdateFunnelStageRequest:
        if (self.lead_ids is None) == (self.user_ids is None):
            raise ValueError("give exactly one of leadIds or userIds")
        return self


class BulkLeadResult(Response):
    affected: int
    unchanged: int = Field(0, description="Already in the requested state.")
    missing: list[str] = Field(default_factory=list, description="Ids that matched no lead.")


class UpdateFunnelStage(
    Command,
    name="update-funnel-stage",
    owner=C,
    domain=CONTACTS,
    role=Role.OPERATOR,
    request=UpdateFunnelStageRequest,
    response=BulkLeadResult,
):
    """Move several leads to a funnel stage at once."""


class AssignLeadRequest(Request):
    """Give leads an account that talks to them and/or a human owner; null clears, omitted keeps."""

    lead_ids: list[Id] = Field(min_length=1, max_length=1000)
    account_id: AccountId | None = Field(
        None, description="Their sending account; pool sends to them prefer it."
    )
    assignee: str | None = Field(None, min_length=1, max_length=100, description="The human owner.")

    @model_validator(mode="after")
    def _something(self) -> AssignLeadRequest:
        if not ({"account_id", "assignee"} & self.model_fields_set):
            raise ValueError("give accountId and/or assignee")
        return self


class AssignLead(
    Command,
    name="assign-lead",
    owner=C,
    domain=CONTACTS,
    role=Role.OPERATOR,
    request=AssignLeadRequest,
    response=BulkLeadResult,
):
    """Assign leads to an account and/or a human owner."""


# --- funnel --------------------------------------------------------------------------------------


class GetFunnelStatsRequest(Request):
    since: AwareDatetime | None = Field(None, description="Leads created since.")
    until: AwareDatetime | None = None
    campaign_id: Id | None = None
    source_group_id: Id | None = None
    keyword_set_id: Id | None = None
    assigned_account_id: AccountId | None = None


class FunnelStageCount(Response):
    stage: LeadStage
    count: int = Field(description="Leads now in this stage.")
    reached: int = Field(description="Leads that ever reached this stage.")
    conversion_from_previous: float | None = Field(
        None, ge=0, le=1, description="reached / reached of the previous funnel stage."
    )
    avg_hours_in_stage: float | None = None


class FunnelStats(Response):
    stages: list[FunnelStageCount] = Field(description="In funnel order.")
    total: int
    conversion_rate: float | None = Field(None, ge=0, le=1, description="closed_won / total.")
    new_last_7_days: int = 0
    by_source: dict[LeadSource, int] = Field(default_factory=dict)


class GetFunnelStats(
    Command,
    name="get-funnel-stats",
    owner=C,
    domain=CONTACTS,
    role=Role.VIEWER,
    request=GetFunnelStatsRequest,
    response=FunnelStats,
):
    """Leads per funnel stage with stage-to-stage conversion and time in stage."""


class GetFunnelUsersRequest(PageRequest):
    stage: LeadStage | None = Field(None, description="One stage; all stages when omitted.")
    tags: list[Tag] | None = Field(None, min_length=1)
    min_intent_score: int | None = Field(None, ge=0, le=100)
    max_intent_score: int | None = Field(None, ge=0, le=100)
    search: str | None = Field(None, min_length=1, max_length=100)
    stale_days: int | None = Field(None, ge=1, le=365, description="Only those in their stage this long.")


class FunnelUser(Response):
    lead_id: str
    user_id: int | None = None
    username: str | None = None
    display_name: str | None = None
    stage: LeadStage
    stage_since: datetime | None = None
    days_in_stage: float | None = None
    intent_score: int | None = None
    intent_level: IntentLevel = "none"
    tags: list[str] = Field(default_factory=list)
    last_interaction_at: datetime | None = None
    assigned_account_id: str | None = None


class GetFunnelUsers(
    Command,
    name="get-funnel-users",
    owner=C,
    domain=CONTACTS,
    role=Role.VIEWER,
    request=GetFunnelUsersRequest,
    response=Page[FunnelUser],
):
    """Users in the funnel (one stage or all), longest in stage first."""


# --- tracked users -------------------------------------------------------------------------------

ValueLevel = Literal["high", "medium", "low"]


class TrackUserRequest(Request):
    user_id: UserId | None = None
    username: Username | None = None
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    value_level: ValueLevel = "medium"
    source: str | None = Field(None, max_length=100, description="Why tracked, e.g. `lead`, `manual`.")
    source_group_id: Id | None = None
    notes: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _identity(self) -> TrackUserRequest:
        if self.user_id is None and self.username is None:
            raise ValueError("give userId or username")
        return self


class TrackedUserView(Response):
    id: str
    user_id: int | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    value_level: ValueLevel = "medium"
    status: Literal["active", "paused"] = "active"
    source: str | None = None
    source_group_id: str | None = None
    notes: str | None = None
    lead_id: str | None = None
    groups_seen: int = Field(0, description="Monitored groups the user has written in.")
    message_count: int = 0
    last_seen_at: datetime | None = None
    tracked_since: datetime


class TrackUser(
    Command,
    name="track-user",
    owner=C,
    domain=CONTACTS,
    role=Role.OPERATOR,
    request=TrackUserRequest,
    response=TrackedUserView,
):
    """Start keeping a user's activity (idempotent: tracking a tracked user updates it)."""


class UntrackUserRequest(Request):
    user_id: UserId | None = None
    username: Username | None = None
    forget_activity: bool = Field(False, description="Also delete the activity kept so far.")

    @model_validator(mode="after")
    def _identity(self) -> UntrackUserRequest:
        if self.user_id is None and self.username is None:
            raise ValueError("give userId or username")
        return self


class UntrackUser(
    Command,
    name="untrack-user",
    owner=C,
    domain=CONTACTS,
    role=Role.OPERATOR,
    request=UntrackUserRequest,
    response=Ack,
):
    """Stop keeping a user's activity."""


class GetTrackedUsersRequest(PageRequest):
    value_level: ValueLevel | None = None
    status: Literal["active", "paused"] | None = None
    search: str | None = Field(None, min_length=1, max_length=100)


class GetTrackedUsers(
    Command,
    name="get-tracked-users",
    owner=C,
    domain=CONTACTS,
    role=Role.VIEWER,
    request=GetTrackedUsersRequest,
    response=Page[TrackedUserView],
):
    """List tracked users, most recently seen first."""


ActivityKind = Literal[
    "group_message",
    "private_in",
    "private_out",
    "keyword_match",
    "trigger_fired",
    "lead_captured",
    "stage_change",
    "job_skipped",
    "job_failed",
    "opted_out",
    "blacklisted",
]


class GetUserActivityRequest(PageRequest):
    user_id: UserId | None = None
    lead_id: Id | None = None
    kinds: list[ActivityKind] | None = Field(None, min_length=1)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one(self) -> GetUserActivityRequest:
        if (self.user_id is None) == (self.lead_id is None):
            raise ValueError("give exactly one of userId or leadId")
        return self


class ActivityItem(Response):
    at: datetime
    kind: ActivityKind
    account_id: str | None = None
    group_id: str | None = None
    group_title: str | None = None
    text: str | None = Field(None, description="Message text or a summary, ≤ 500 characters.")
    ref_id: str | None = Field(None, description="The job, rule, match or message it refers to.")
    detail: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class GetUserActivity(
    Command,
    name="get-user-activity",
    owner=C,
    domain=CONTACTS,
    role=Role.VIEWER,
    request=GetUserActivityRequest,
    response=Page[ActivityItem],
):
    """A user's timeline, newest first: messages, matches, triggers, stage changes and sends."""


# --- blacklist -----------------------------------------------------------------------------------


class BlacklistUserRequest(Request):
    """The earlier client's `{telegramId, blacklist}`; `telegramId` is accepted for `userId`."""

    user_id: UserId | None = Field(None, validation_alias=AliasChoices("userId", "user_id", "telegramId"))
    username: Username | None = None
    blacklist: bool = Field(True, description="False lifts the ban (opt-outs stay in force).")
    reason: str | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _identity(self) -> BlacklistUserRequest:
        if self.user_id is None and self.username is None:
            raise ValueError("give userId or username")
        return self


class BlacklistResult(Response):
    user_id: int | None = None
    username: str | None = None
    blacklisted: bool
    reason: str | None = None
    changed_at: datetime
    cancelled_jobs: int = Field(0, description="Waiting jobs to this user cancelled by the ban.")


class BlacklistUser(
    Command,
    name="blacklist-user",
    owner=C,
    domain=CONTACTS,
    role=Role.OPERATOR,
    request=BlacklistUserRequest,
    response=BlacklistResult,
):
    """Ban (or unban) a user from every send of every account; waiting jobs to them are cancelled."""
