"""The 9 campaign-owned `ads` commands: ad campaigns that post templates to groups on a schedule.

An ad campaign posts one of its templates to each of its target groups at each scheduled run, from
its accounts (one fixed account, a rotation, a relay or at random), through the queue and its
per-group limits. Ad templates are message templates of category `ad` (created with `add-template`
or `save-chat-template`); `get-ad-templates` lists them with their ad usage.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from ..base import Ack, Id, Page, PageRequest, Request, Response
from ..command import Command
from ..enums import Domain, Role, Service
from ..models.campaign import (
    HHMM,
    AccountPool,
    CampaignStatus,
    PreviewInput,
    TemplatePreview,
    TemplateView,
    TimeWindow,
)
from ..models.session import ChatRef

C = Service.CAMPAIGN
ADS = Domain.ADS

# --- shapes --------------------------------------------------------------------------------------


class AdTarget(Request):
    """A group to post in: a monitored group, or any group by chat id, username or link."""

    group_id: Id | None = Field(None, description="A monitored group.")
    chat: ChatRef | None = Field(None, description="Any group: id, @username, t.me link or invite link.")

    @model_validator(mode="after")
    def _one(self) -> AdTarget:
        if (self.group_id is None) == (self.chat is None):
            raise ValueError("give exactly one of groupId or chat")
        return self


_SCHEDULE_NEEDS = {
    "once": ("start_at", "startAt"),
    "daily": ("times", "times"),
    "interval": ("interval_minutes", "intervalMinutes"),
    "cron": ("cron", "cron"),
}

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class AdSchedule(Request):
    """When runs happen (the earlier client's `scheduleType: once|daily|interval|cron`)."""

    type: Literal["once", "daily", "interval", "cron"]
    start_at: AwareDatetime | None = Field(None, description="`once`: the run; others: not before.")
    end_at: AwareDatetime | None = None
    times: list[HHMM] | None = Field(None, min_length=1, max_length=48, description="`daily`: local times.")
    weekdays: list[Weekday] | None = Field(None, min_length=1, description="`daily`: only these days.")
    interval_minutes: int | None = Field(None, ge=10, le=7 * 1440, description="`interval`: between runs.")
    cron: str | None = Field(
        None, max_length=100, pattern=r"^\S+(\s+\S+){4}$", description="`cron`: five-field expression."
    )
    timezone: str | None = Field(None, max_length=64, description="IANA zone; general.timezone when null.")
    max_runs: int | None = Field(None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _fields_for_type(self) -> AdSchedule:
        field, wire = _SCHEDULE_NEEDS[self.type]
        if getattr(self, field) is None:
            raise ValueError(f"schedule type {self.type!r} needs {wire}")
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise ValueError("endAt must be after startAt")
        return self


AccountStrategyAd = Literal["single", "rotate", "relay", "random"]
"""`single`: one account posts everything; `rotate`: the next account each run; `relay`: the next account
each post; `random`: any account of the pool per post."""


class AdCampaignSpec(Request):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(None, max_length=1000)
    template_ids: list[Id] = Field(min_length=1, max_length=20)
    template_rotation: Literal["sequential", "random"] = "sequential"
    targets: list[AdTarget] = Field(min_length=1, max_length=2000)
    schedule: AdSchedule
    accounts: AccountPool = Field(default_factory=AccountPool)
    account_strategy: AccountStrategyAd = "rotate"
    min_group_interval_minutes: int = Field(
        60, ge=1, le=7 * 1440, description="Never post in the same group more often than this."
    )
    skip_if_last_message_ours: bool = Field(
        True, description="Skip a group whose latest message is already one of our posts."
    )
    template_weights: list[int] | None = Field(
        None,
        min_length=1,
        max_length=20,
        description="Per-template weights (same order as templateIds, 1..100) for `random` rotation.",
    )
    quiet_hours: TimeWindow | None = Field(
        None, description="No run starts inside; one due moves to its end."
    )
    max_posts_per_account_per_day: int | None = Field(
        None, ge=1, le=10_000, description="Posts of this campaign one account makes per local day."
    )
    max_posts_per_group_per_day: int | None = Field(
        None, ge=1, le=1440, description="Posts of this campaign in one group per local day."
    )

    @model_validator(mode="after")
    def _weights(self) -> AdCampaignSpec:
        w = self.template_weights
        if w is not None and (len(w) != len(self.template_ids) or any(not 1 <= x <= 100 for x in w)):
            raise ValueError("templateWeights: one weight 1..100 per templateIds entry")
        return self


class AdCounters(Response):
    runs: int = 0
    posted: int = 0
    failed: int = 0
    skipped: int = 0


class AdCampaignView(AdCampaignSpec, Response):
    model_config = Response.model_config

    id: str
    status: CampaignStatus
    counters: AdCounters = Field(default_factory=AdCounters)
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime
    updated_at: datetime


# --- commands ------------------------------------------------------------------------------------


class CreateAdCampaignRequest(AdCampaignSpec):
    start: bool = Field(False, description="Start at once instead of staying a draft.")


class CreateAdCampaign(
    Command,
    name="create-ad-campaign",
    owner=C,
    domain=ADS,
    role=Role.OPERATOR,
    request=CreateAdCampaignRequest,
    response=AdCampaignView,
):
    """Create an ad campaign (templates, target groups, schedule, accounts)."""


class UpdateAdCampaignRequest(Request):
    """A patch: fields not sent are unchanged. A running campaign takes the change from its next run."""

    id: Id
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=1000)
    template_ids: list[Id] | None = Field(None, min_length=1, max_length=20)
    template_rotation: Literal["sequential", "random"] | None = None
    targets: list[AdTarget] | None = Field(None, min_length=1, max_length=2000)
    schedule: AdSchedule | None = None
    accounts: AccountPool | None = None
    account_strategy: AccountStrategyAd | None = None
    min_group_interval_minutes: int | None = Field(None, ge=1, le=7 * 1440)
    skip_if_last_message_ours: bool | None = None
    template_weights: list[int] | None = Field(None, min_length=1, max_length=20)
    quiet_hours: TimeWindow | None = None
    max_posts_per_account_per_day: int | None = Field(None, ge=1, le=10_000)
    max_posts_per_group_per_day: int | None = Field(None, ge=1, le=1440)

    @model_validator(mode="after")
    def _something(self) -> UpdateAdCampaignRequest:
        if not (self.model_fields_set - {"id"}):
            raise ValueError("give at least one field to change")
        return self


class UpdateAdCampaign(
    Command,
    name="update-ad-campaign",
    owner=C,
    domain=ADS,
    role=Role.OPERATOR,
    request=UpdateAdCampaignRequest,
    response=AdCampaignView,
):
    """Change an ad campaign."""


class AdCampaignIdRequest(Request):
    id: Id


class DeleteAdCampaign(
    Command,
    name="delete-ad-campaign",
    owner=C,
    domain=ADS,
    role=Role.ADMIN,
    request=AdCampaignIdRequest,
    response=Ack,
):
    """Delete an ad campaign and cancel its waiting posts (its send log stays for stats)."""


class GetAdCampaignsRequest(PageRequest):
    statuses: list[CampaignStatus] | None = Field(None, min_length=1)
    template_id: Id | None = None
    search: str | None = Field(None, min_length=1, max_length=100)


class GetAdCampaigns(
    Command,
    name="get-ad-campaigns",
    owner=C,
    domain=ADS,
    role=Role.VIEWER,
    request=GetAdCampaignsRequest,
    response=Page[AdCampaignView],
):
    """List ad campaigns with their counters and next run."""


class StartAdCampaign(
    Command,
    name="start-ad-campaign",
    owner=C,
    domain=ADS,
    role=Role.OPERATOR,
    request=AdCampaignIdRequest,
    response=AdCampaignView,
):
    """Start (or resume) an ad campaign's schedule."""


class StopAdCampaignRequest(AdCampaignIdRequest):
    cancel_pending: bool = Field(True, description="Cancel its waiting posts.")


class StopAdCampaign(
    Command,
    name="stop-ad-campaign",
    owner=C,
    domain=ADS,
    role=Role.OPERATOR,
    request=StopAdCampaignRequest,
    response=AdCampaignView,
):
    """Stop an ad campaign's schedule; in-flight posts finish."""


class GetAdTemplatesRequest(Request):
    active_only: bool = True
    search: str | None = Field(None, min_length=1, max_length=100)


class AdTemplateView(TemplateView):
    ad_campaign_ids: list[str] = Field(default_factory=list, description="Ad campaigns using it.")
    posted: int = Field(0, description="Posts made with it.")


class GetAdTemplates(
    Command,
    name="get-ad-templates",
    owner=C,
    domain=ADS,
    role=Role.VIEWER,
    request=GetAdTemplatesRequest,
    response=Page[AdTemplateView],
):
    """List the templates of category `ad` with the campaigns using them."""


class GetAdStatsRequest(Request):
    ad_campaign_id: Id | None = Field(None, description="One campaign; all when omitted.")
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    group_by: Literal["campaign", "day", "group", "account", "template"] = "campaign"


class AdStatsRow(Response):
    key: str = Field(description="Campaign id, day (YYYY-MM-DD), group id, account id or template id.")
    label: str | None = None
    posted: int = 0
    failed: int = 0
    skipped: int = 0
    replies: int = Field(
        0,
        description=(
            "Replies to our posts seen in the groups: group messages (not from the posting account) "
            "that reply to a post's message, each counted once, on the day it was written."
        ),
    )
    leads: int = Field(0, description="Of the people who replied, those who are leads in the CRM now.")
    clicks: int | None = Field(
        None,
        description=(
            "Always null: a click on a link in a post is not measurable (posts carry the link as "
            "written, no tracking redirect), so no figure is given rather than a false 0."
        ),
    )
    last_posted_at: datetime | None = None
    queued: int = Field(0, description="Posts waiting or in flight.")
    cancelled: int = 0
    failed_by_reason: dict[str, int] = Field(default_factory=dict, description="E.g. chat_write_forbidden.")
    skipped_by_reason: dict[str, int] = Field(default_factory=dict, description="E.g. group_interval.")


class AdStats(Response):
    group_by: str
    since: date | None = None
    until: date | None = None
    totals: AdStatsRow
    rows: list[AdStatsRow]


class GetAdStats(
    Command,
    name="get-ad-stats",
    owner=C,
    domain=ADS,
    role=Role.VIEWER,
    request=GetAdStatsRequest,
    response=AdStats,
):
    """Posts, failures, replies and leads of ad campaigns, grouped as asked."""


class PreviewAdRequest(PreviewInput):
    """Render an ad: a campaign's next post, one template, or unsaved content."""

    ad_campaign_id: Id | None = None
    template_id: Id | None = None
    content: str | None = Field(None, min_length=1, max_length=8192)

    @model_validator(mode="after")
    def _one(self) -> PreviewAdRequest:
        if sum(v is not None for v in (self.ad_campaign_id, self.template_id, self.content)) != 1:
            raise ValueError("give exactly one of adCampaignId, templateId or content")
        return self


class AdPostPreview(Response):
    """What one target would get at the next run."""

    target: str = Field(description="Monitored group id or chat as given.")
    label: str | None = None
    peer: int | str | None = None
    account_id: str | None = None
    template_id: str | None = None
    text: str | None = Field(None, description="One rendering (spintax varies per real post).")
    skip: str | None = Field(None, description="Why the next run would not post here.")


class AdPreview(TemplatePreview):
    template_id: str | None = None
    next_run_at: datetime | None = None
    targets: int = Field(0, description="Groups the next run would post in (after group-interval rules).")
    posts: list[AdPostPreview] = Field(default_factory=list, description="A campaign's next run, per target.")


class PreviewAd(
    Command,
    name="preview-ad",
    owner=C,
    domain=ADS,
    role=Role.VIEWER,
    request=PreviewAdRequest,
    response=AdPreview,
):
    """Render an ad with spintax variety, and say when and where it would post next."""
