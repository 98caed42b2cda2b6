"""The 30 campaign-owned `automation` commands: keyword sets, monitored groups, monitoring, trigger
rules and campaigns (tg-session owns the other four: get-group-members, join-group, leave-group,
search-groups).

How it fits: listener accounts (tg-session) report messages of monitored groups; campaign matches them
against the groups' keyword sets, captures leads, and fires the trigger rules whose keyword sets and
conditions match, each rule's actions going through the queue like any other send. A campaign is a
sequence of messages (steps) to an audience of leads or peers, run through the same queue.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..base import Ack, Empty, Id, Page, PageRequest, Request, Response
from ..command import Command
from ..enums import Domain, Role, Service
from ..markup import MessageMarkup
from ..models.campaign import (
    AccountChoice,
    CampaignStatus,
    IntentLevel,
    LeadStage,
    PeerRef,
    QueueCounts,
    QueuedPriority,
    Tag,
    TimeWindow,
    Username,
    Variables,
    compile_regex,
)
from ..models.session import AccountId, ChatRef

C = Service.CAMPAIGN
AUTOMATION = Domain.AUTOMATION

# --- keyword sets --------------------------------------------------------------------------------

MatchType = Literal["exact", "contains", "regex", "fuzzy"]
"""`exact`: the whole message (trimmed, case-folded) equals the keyword; `contains`: the keyword occurs
as a substring; `regex`: a Python regular expression searches the message; `fuzzy`: a word window of
the message is similar to the keyword by at least the set's `fuzzyThreshold`."""


class KeywordInput(Request):
    # match_type comes first so that the keyword's validator can see it.
    match_type: MatchType | None = Field(None, description="Overrides the set's matchMode for this keyword.")
    case_sensitive: bool = False
    keyword: str = Field(min_length=1, max_length=200)

    @field_validator("keyword")
    @classmethod
    def _regex_compiles(cls, v: str, info: ValidationInfo) -> str:
        return compile_regex(v) if info.data.get("match_type") == "regex" else v


def _keyword_from_str(v: object) -> object:
    # Plain strings are accepted for the earlier client's `keywords: ["a", "b"]`.
    return {"keyword": v} if isinstance(v, str) else v


def _check_keywords(items: list[KeywordInput], mode: MatchType) -> None:
    seen: set[tuple[str, str]] = set()
    for k in items:
        kind = k.match_type or mode
        if kind == "regex":
            compile_regex(k.keyword)
        key = (kind, k.keyword if k.case_sensitive else k.keyword.casefold())
        if key in seen:
            raise ValueError(f"keyword {k.keyword!r} appears twice")
        seen.add(key)


class KeywordView(Response):
    id: str
    keyword: str
    match_type: MatchType = Field(description="Effective match type.")
    case_sensitive: bool = False
    match_count: int = 0
    last_matched_at: datetime | None = None


class KeywordSetSpec(Request):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    match_mode: MatchType = Field("contains", description="Default match type of its keywords.")
    fuzzy_threshold: float = Field(0.85, ge=0.5, le=1.0, description="Similarity needed by `fuzzy`.")
    keywords: list[Annotated[KeywordInput, BeforeValidator(_keyword_from_str)]] = Field(
        default_factory=list, max_length=2000, description="Objects, or plain strings using matchMode."
    )
    exclude_keywords: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=200, description="A message containing any of these never matches."
    )
    is_active: bool = True

    @field_validator("keywords")
    @classmethod
    def _unique_and_valid(cls, v: list[KeywordInput], info: ValidationInfo) -> list[KeywordInput]:
        _check_keywords(v, info.data.get("match_mode", "contains"))
        return v


class KeywordSetView(Response):
    id: str
    name: str
    description: str | None = None
    match_mode: MatchType
    fuzzy_threshold: float = 0.85
    keywords: list[KeywordView] = Field(default_factory=list)
    exclude_keywords: list[str] = Field(default_factory=list)
    is_active: bool = True
    total_matches: int = 0
    group_ids: list[str] = Field(default_factory=list, description="Monitored groups it is bound to.")
    trigger_rule_ids: list[str] = Field(default_factory=list, description="Trigger rules that use it.")
    created_at: datetime
    updated_at: datetime


class AddKeywordSet(
    Command,
    name="add-keyword-set",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=KeywordSetSpec,
    response=KeywordSetView,
    example={
        "name": "Pricing questions",
        "matchMode": "contains",
        "keywords": [{"keyword": "多少錢"}, {"keyword": "price"}],
    },
):
    """Create a keyword set (CONFLICT if the name exists)."""


class SaveKeywordSetRequest(KeywordSetSpec):
    id: Id | None = Field(None, description="Replace this set's definition; create one when omitted.")


class SaveKeywordSet(
    Command,
    name="save-keyword-set",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=SaveKeywordSetRequest,
    response=KeywordSetView,
):
    """Create or replace a keyword set; keywords kept by text keep their ids and match counts."""


class DeleteKeywordSetRequest(Request):
    id: Id
    force: bool = Field(
        False,
        description="Also unbind it from groups and trigger rules (rules left with no set are deactivated);"
        " without it a set in use is a CONFLICT.",
    )


class DeleteKeywordSet(
    Command,
    name="delete-keyword-set",
    owner=C,
    domain=AUTOMATION,
    role=Role.ADMIN,
    request=DeleteKeywordSetRequest,
    response=Ack,
):
    """Delete a keyword set."""


class RemoveKeywordSet(
    Command,
    name="remove-keyword-set",
    owner=C,
    domain=AUTOMATION,
    role=Role.ADMIN,
    request=DeleteKeywordSetRequest,
    response=Ack,
):
    """Delete a keyword set (the earlier client's name for delete-keyword-set; same behaviour)."""


class GetKeywordSetsRequest(Request):
    active_only: bool = False
    search: str | None = Field(None, min_length=1, max_length=100, description="In names and keywords.")
    ids: list[Id] | None = Field(None, min_length=1, max_length=500)


class GetKeywordSets(
    Command,
    name="get-keyword-sets",
    owner=C,
    domain=AUTOMATION,
    role=Role.VIEWER,
    request=GetKeywordSetsRequest,
    response=Page[KeywordSetView],
):
    """List keyword sets with their keywords, match counts and bindings."""


class AddKeywordRequest(KeywordInput):
    set_id: Id


class AddKeyword(
    Command,
    name="add-keyword",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=AddKeywordRequest,
    response=KeywordSetView,
):
    """Add one keyword to a set (a regex set's keywords must compile; duplicates are a CONFLICT)."""


class RemoveKeywordRequest(Request):
    set_id: Id
    keyword_id: Id | None = None
    keyword: str | None = Field(
        None, min_length=1, max_length=200, description="Remove by text instead of id."
    )

    @model_validator(mode="after")
    def _one(self) -> RemoveKeywordRequest:
        if (self.keyword_id is None) == (self.keyword is None):
            raise ValueError("give exactly one of keywordId or keyword")
        return self


class RemoveKeyword(
    Command,
    name="remove-keyword",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=RemoveKeywordRequest,
    response=KeywordSetView,
):
    """Remove one keyword from a set."""


# --- monitored groups ----------------------------------------------------------------------------

GroupStatus = Literal["pending", "ok", "needs_join", "cannot_join", "error"]


class MonitoredGroupView(Response):
    id: str
    url: str | None = None
    username: str | None = None
    chat_id: int | None = None
    title: str | None = None
    keyword_set_ids: list[str] = Field(default_factory=list)
    listener_account_ids: list[str] | None = Field(None, description="Null: every listener account.")
    is_active: bool = True
    paused: bool = False
    status: GroupStatus = "pending"
    status_detail: str | None = None
    member_count: int | None = None
    match_count: int = 0
    last_message_at: datetime | None = None
    last_match_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class AddGroupRequest(Request):
    group: ChatRef = Field(
        validation_alias=AliasChoices("group", "url"),
        description="Chat id, @username, t.me link or invite link (the earlier client's `url` is accepted).",
    )
    name: str | None = Field(None, max_length=255, description="Title to show until it is resolved.")
    keyword_set_ids: list[Id] = Field(default_factory=list, max_length=100)
    listener_account_ids: list[AccountId] | None = Field(None, min_length=1, max_length=200)
    auto_join: bool = Field(True, description="Let a listener account join when none is a member.")


class AddGroup(
    Command,
    name="add-group",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=AddGroupRequest,
    response=MonitoredGroupView,
):
    """Add a group to monitor with its keyword sets (CONFLICT if already monitored)."""


class GroupIdRequest(Request):
    id: Id


class RemoveGroup(
    Command,
    name="remove-group",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=GroupIdRequest,
    response=Ack,
):
    """Stop monitoring a group and forget its bindings (accounts stay members)."""


class GetMonitoredGroupsRequest(Request):
    active_only: bool = False
    keyword_set_id: Id | None = None
    statuses: list[GroupStatus] | None = Field(None, min_length=1)
    search: str | None = Field(None, min_length=1, max_length=100)


class GetMonitoredGroups(
    Command,
    name="get-monitored-groups",
    owner=C,
    domain=AUTOMATION,
    role=Role.VIEWER,
    request=GetMonitoredGroupsRequest,
    response=Page[MonitoredGroupView],
):
    """List monitored groups with their access status and match counts."""


class KeywordBindingRequest(Request):
    group_id: Id
    keyword_set_id: Id


class BindKeywordSet(
    Command,
    name="bind-keyword-set",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=KeywordBindingRequest,
    response=MonitoredGroupView,
):
    """Match a group's messages against a keyword set (idempotent)."""


class UnbindKeywordSet(
    Command,
    name="unbind-keyword-set",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=KeywordBindingRequest,
    response=MonitoredGroupView,
):
    """Stop matching a group's messages against a keyword set (idempotent)."""


class PauseMonitoringRequest(Request):
    group_id: Id
    reason: str | None = Field(None, max_length=300)


class PauseMonitoring(
    Command,
    name="pause-monitoring",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=PauseMonitoringRequest,
    response=MonitoredGroupView,
):
    """Ignore one group's messages until resumed (the others keep being watched)."""


class ResumeMonitoringRequest(Request):
    group_id: Id


class ResumeMonitoring(
    Command,
    name="resume-monitoring",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=ResumeMonitoringRequest,
    response=MonitoredGroupView,
):
    """Watch a paused group again."""


# --- monitoring ----------------------------------------------------------------------------------


class Issue(Response):
    """A configuration problem found by a check (the earlier client's `{code, message, fix}`)."""

    code: str = Field(
        description="E.g. NO_LISTENER, LISTENER_OFFLINE, NO_KEYWORD_SETS, NO_GROUPS, NO_SENDER."
    )
    severity: Literal["critical", "warning", "info"]
    message: str
    fix: str | None = None


class ListenerView(Response):
    account_id: str
    state: Literal["listening", "starting", "unavailable", "error"]
    groups: int = Field(0, description="Groups it watches.")
    error: str | None = None


class GroupAccess(Response):
    group_id: str
    title: str | None = None
    access: Literal["member", "can_join", "cannot_join", "unknown"]
    account_id: str | None = Field(None, description="The listener that is (or would become) a member.")
    detail: str | None = None


class MonitoringStatus(Response):
    active: bool
    started_at: datetime | None = None
    groups_total: int = 0
    groups_watched: int = 0
    groups_paused: int = 0
    listeners: list[ListenerView] = Field(default_factory=list)
    issues: list[Issue] = Field(default_factory=list)
    groups: list[GroupAccess] = Field(default_factory=list, description="Per-group access (from a check).")
    message: str | None = None


class StartMonitoringRequest(Request):
    group_ids: list[Id] | None = Field(
        None, min_length=1, description="Only these groups; all active otherwise."
    )
    dry_run: bool = Field(False, description="Run the configuration and access check only.")


class StartMonitoring(
    Command,
    name="start-monitoring",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=StartMonitoringRequest,
    response=MonitoringStatus,
    timeout=120,
):
    """Check the configuration and group access, then start the listeners; critical issues keep it off
    (`active` false, `issues` say why)."""


class StopMonitoring(
    Command,
    name="stop-monitoring",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=Empty,
    response=MonitoringStatus,
):
    """Stop watching every group (queued replies stay queued)."""


class CountActive(Response):
    total: int = 0
    active: int = 0


class AccountsSummary(Response):
    available: bool = Field(True, description="False when tg-session did not answer.")
    total: int = 0
    online: int = 0
    offline: int = 0
    senders_total: int = 0
    senders_online: int = 0
    listeners_online: int = 0


class AiSummary(Response):
    available: bool = True
    auto_reply: bool = False
    provider: str | None = None
    can_reply: bool = False


class QueueSummary(QueueCounts):
    paused: bool = False


class SystemStatus(Response):
    """What automation needs to run, in one look (the earlier client's `system-status`)."""

    accounts: AccountsSummary
    monitoring: MonitoringStatus
    ai: AiSummary
    keyword_sets: CountActive
    keywords: int = 0
    groups: CountActive
    trigger_rules: CountActive
    campaigns: CountActive
    templates: CountActive
    queue: QueueSummary
    warnings: list[Issue] = Field(default_factory=list)
    generated_at: datetime


class GetSystemStatus(
    Command,
    name="get-system-status",
    owner=C,
    domain=AUTOMATION,
    role=Role.VIEWER,
    request=Empty,
    response=SystemStatus,
):
    """Accounts, monitoring, AI, rules, campaigns, templates and queue at a glance, with warnings."""


OneClickStepName = Literal["check", "groups", "monitoring", "ai", "queue", "campaigns"]


class OneClickStep(Response):
    step: OneClickStepName
    ok: bool
    skipped: bool = False
    message: str


class OneClickResult(Response):
    ok: bool = Field(description="Every step that ran succeeded.")
    steps: list[OneClickStep]
    monitoring: MonitoringStatus
    duration_ms: int


class OneClickStartRequest(Request):
    force_refresh: bool = Field(False, description="Re-resolve every group and re-check memberships.")
    ai_auto_reply: bool | None = Field(None, description="Switch AI auto-reply on/off; unchanged when null.")
    resume_queue: bool = Field(True, description="Lift a whole-queue pause.")
    campaign_ids: list[Id] | None = Field(None, min_length=1, description="Campaigns to start too.")


class OneClickStart(
    Command,
    name="one-click-start",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=OneClickStartRequest,
    response=OneClickResult,
    timeout=180,
):
    """Check, join and resolve groups, start monitoring, set AI auto-reply and resume the queue, step by
    step (progress as `one-click-progress` events)."""


class OneClickStopRequest(Request):
    disable_ai_auto_reply: bool = True
    pause_queue: bool = False
    stop_campaigns: bool = False


class OneClickStop(
    Command,
    name="one-click-stop",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=OneClickStopRequest,
    response=OneClickResult,
    timeout=60,
):
    """Stop monitoring, and optionally AI auto-reply, the queue and running campaigns."""


# --- trigger rules -------------------------------------------------------------------------------


class TriggerConditions(Request):
    new_member_only: bool = Field(False, description="Only senders who joined the group recently (24 h).")
    exclude_admin: bool = Field(True, description="Never fire on group admins' messages.")
    time_range: TimeWindow | None = None
    once_per_user: bool = Field(False, description="Fire at most once ever per user (cooldown aside).")
    min_intent_score: int | None = Field(None, ge=0, le=100)
    exclude_lead_stages: list[LeadStage] = Field(
        default_factory=lambda: [LeadStage.CLOSED_WON, LeadStage.CLOSED_LOST]
    )


ReplyTarget = Literal["private", "group_reply"]


class ReplyTemplateAction(Request):
    type: Literal["reply_template"] = "reply_template"
    template_id: Id
    target: ReplyTarget = Field("private", description="A private message, or a reply in the group.")
    markup: MessageMarkup | None = Field(
        None,
        description="Buttons sent with the reply where the channel has them (Tailchat bots; Telegram bot "
        "accounts); a reply by a Telegram user account goes without them.",
    )


class AiReplyAction(Request):
    type: Literal["ai_reply"] = "ai_reply"
    mode: Literal["full", "semi"] = Field("full", description="`semi`: suggest to an operator, send nothing.")
    strategy_id: Id | None = Field(None, description="AI strategy (persona, tone, rules).")
    prompt: str | None = Field(None, max_length=2000, description="Extra instruction for this rule.")
    target: ReplyTarget = "private"
    markup: MessageMarkup | None = Field(
        None, description="Buttons sent with the AI's reply where the channel has them (as reply_template)."
    )


class AddLeadAction(Request):
    type: Literal["add_lead"] = "add_lead"
    stage: LeadStage = LeadStage.NEW
    tags: list[Tag] = Field(default_factory=list, max_length=20)


class NotifyAction(Request):
    type: Literal["notify"] = "notify"
    channel: Literal["console", "alert"] = Field(
        "console", description="Console push, or an analytics alert."
    )
    message: str | None = Field(None, max_length=1000, description="Template; a default summary when null.")


class StartScenarioAction(Request):
    type: Literal["start_scenario"] = "start_scenario"
    scenario_id: Id


TriggerAction = Annotated[
    ReplyTemplateAction | AiReplyAction | AddLeadAction | NotifyAction | StartScenarioAction,
    Field(discriminator="type"),
]


class TriggerRuleSpec(Request):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    priority: int = Field(2, ge=1, le=100, description="Higher runs first.")
    exclusive: bool = Field(True, description="When it fires, lower-priority rules skip the same message.")
    is_active: bool = True
    source_type: Literal["all", "specific"] = "all"
    source_group_ids: list[Id] = Field(default_factory=list, max_length=500)
    keyword_set_ids: list[Id] = Field(min_length=1, max_length=100)
    conditions: TriggerConditions = Field(default_factory=TriggerConditions)
    actions: list[TriggerAction] = Field(min_length=1, max_length=10)
    sender_type: Literal["auto", "specific", "listener"] = Field(
        "auto", description="`auto`: any healthy sender; `listener`: the account that saw the message."
    )
    sender_account_ids: list[AccountId] = Field(default_factory=list, max_length=200)
    delay_min: int = Field(30, ge=0, le=86_400, description="Seconds before replying, at least.")
    delay_max: int = Field(120, ge=0, le=86_400, description="Seconds before replying, at most.")
    daily_limit: int = Field(50, ge=1, le=10_000, description="Firings per day for this rule.")
    cooldown_seconds: int | None = Field(
        None, ge=0, le=30 * 86_400, description="Per user; compliance.triggerCooldownSeconds when null."
    )

    @model_validator(mode="after")
    def _consistent(self) -> TriggerRuleSpec:
        if self.source_type == "specific" and not self.source_group_ids:
            raise ValueError("sourceType 'specific' needs sourceGroupIds")
        if self.sender_type == "specific" and not self.sender_account_ids:
            raise ValueError("senderType 'specific' needs senderAccountIds")
        if self.delay_max < self.delay_min:
            raise ValueError("delayMax must be >= delayMin")
        replies = [a for a in self.actions if a.type in ("reply_template", "ai_reply")]
        if len(replies) > 1:
            raise ValueError("at most one reply action (reply_template or ai_reply)")
        return self


class TriggerRuleView(TriggerRuleSpec, Response):
    model_config = Response.model_config

    id: str
    keyword_set_ids: list[Id] = Field(
        max_length=100,
        description="Empty when its keyword sets were deleted with `force` (the rule is then inactive).",
    )
    trigger_count: int = 0
    success_count: int = 0
    last_triggered_at: datetime | None = None
    overlap_warning: str | None = Field(None, description="Another active rule matches the same sets.")
    created_at: datetime
    updated_at: datetime


class SaveTriggerRuleRequest(TriggerRuleSpec):
    id: Id | None = Field(None, description="Replace this rule; create one when omitted.")


class SaveTriggerRule(
    Command,
    name="save-trigger-rule",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=SaveTriggerRuleRequest,
    response=TriggerRuleView,
    example={
        "name": "Answer pricing questions",
        "keywordSetIds": ["ks_0123456789abcdef"],
        "actions": [
            {"type": "reply_template", "templateId": "tpl_0123456789abcdef"},
            {"type": "add_lead", "stage": "contacted", "tags": ["pricing"]},
        ],
        "cooldownSeconds": 600,
        "dailyLimit": 50,
    },
):
    """Create or replace a trigger rule (its keyword sets, groups, templates and accounts must exist)."""


class RuleIdRequest(Request):
    id: Id


class DeleteTriggerRule(
    Command,
    name="delete-trigger-rule",
    owner=C,
    domain=AUTOMATION,
    role=Role.ADMIN,
    request=RuleIdRequest,
    response=Ack,
):
    """Delete a trigger rule."""


class ToggleTriggerRuleRequest(Request):
    id: Id
    is_active: bool | None = Field(None, description="The new state; flips the current one when omitted.")


class ToggleTriggerRule(
    Command,
    name="toggle-trigger-rule",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=ToggleTriggerRuleRequest,
    response=TriggerRuleView,
):
    """Activate or deactivate a trigger rule."""


class GetTriggerRulesRequest(Request):
    active_only: bool = False
    keyword_set_id: Id | None = None
    group_id: Id | None = None


class GetTriggerRules(
    Command,
    name="get-trigger-rules",
    owner=C,
    domain=AUTOMATION,
    role=Role.VIEWER,
    request=GetTriggerRulesRequest,
    response=Page[TriggerRuleView],
):
    """List trigger rules, highest priority first, with their counters."""


class SampleSender(Request):
    user_id: int | None = Field(None, gt=0)
    username: Username | None = None
    first_name: str | None = Field(None, max_length=100)
    is_admin: bool = False
    is_new_member: bool = False
    intent_score: int | None = Field(None, ge=0, le=100)


class SampleMessage(Request):
    text: str = Field(min_length=1, max_length=4096)
    group_id: Id | None = Field(None, description="As if posted in this monitored group.")
    sender: SampleSender = Field(default_factory=SampleSender)
    at: AwareDatetime | None = Field(None, description="As if posted at this time; now when null.")


class TriggerTestRequest(Request):
    """Dry run: nothing is sent, stored or counted."""

    rule_id: Id | None = Field(None, description="A saved rule.")
    rule: TriggerRuleSpec | None = Field(None, description="An unsaved rule, e.g. from an editor.")
    message: SampleMessage
    ignore_cooldown: bool = False

    @model_validator(mode="after")
    def _one(self) -> TriggerTestRequest:
        if (self.rule_id is None) == (self.rule is None):
            raise ValueError("give exactly one of ruleId or rule")
        return self


class KeywordMatch(Response):
    keyword_set_id: str
    keyword_id: str | None = None
    keyword: str
    match_type: MatchType
    start: int = Field(description="Character offset of the match in the text.")
    end: int
    score: float | None = Field(None, description="Similarity, for fuzzy matches.")


class ConditionCheck(Response):
    condition: str
    passed: bool
    detail: str | None = None


class PlannedAction(Response):
    type: str
    text: str | None = Field(None, description="Rendered template reply (AI replies are not generated).")
    sender_account_id: str | None = None
    delay_seconds: int | None = None
    detail: str | None = None


class TriggerTestResult(Response):
    matched: bool = Field(description="A keyword of the rule's sets matched.")
    would_fire: bool
    matches: list[KeywordMatch] = Field(default_factory=list)
    conditions: list[ConditionCheck] = Field(default_factory=list)
    cooldown_blocked: bool = False
    daily_limit_reached: bool = False
    actions: list[PlannedAction] = Field(default_factory=list)
    reason: str | None = Field(None, description="Why it would not fire.")


class TestTriggerRule(
    Command,
    name="test-trigger-rule",
    owner=C,
    domain=AUTOMATION,
    role=Role.VIEWER,
    request=TriggerTestRequest,
    response=TriggerTestResult,
):
    """Show whether a rule would fire on a sample message, which keywords and conditions decide, and
    what it would send."""

    __test__ = False  # not a pytest class, despite its name


# --- campaigns -----------------------------------------------------------------------------------


class CampaignStep(Request):
    text: str | None = Field(None, min_length=1, max_length=8192)
    template_id: Id | None = None
    variables: Variables = Field(default_factory=dict)
    delay_seconds: int = Field(
        0, ge=0, le=30 * 86_400, description="After the previous step (the first: after start or capture)."
    )
    stop_if_replied: bool = Field(True, description="Skip this and later steps once the recipient replied.")

    @model_validator(mode="after")
    def _one(self) -> CampaignStep:
        if (self.text is None) == (self.template_id is None):
            raise ValueError("give exactly one of text or templateId")
        return self


class Audience(Request):
    """Who a campaign writes to: the union of the selectors, minus blacklisted and opted-out users."""

    lead_ids: list[Id] | None = Field(None, min_length=1, max_length=10_000)
    lead_stages: list[LeadStage] | None = Field(None, min_length=1)
    lead_tags: list[Tag] | None = Field(None, min_length=1, max_length=50)
    keyword_set_ids: list[Id] | None = Field(None, min_length=1, description="Leads captured by these sets.")
    group_ids: list[Id] | None = Field(None, min_length=1, description="Leads from these monitored groups.")
    peers: list[PeerRef] | None = Field(None, min_length=1, max_length=10_000)
    include_new_leads: bool = Field(
        False, description="Leads captured while the campaign runs join it (lead follow-up)."
    )
    exclude_contacted_within_days: int | None = Field(None, ge=1, le=365)

    @model_validator(mode="after")
    def _some(self) -> Audience:
        selectors = (self.lead_ids, self.lead_stages, self.lead_tags, self.keyword_set_ids, self.group_ids)
        if all(s is None for s in selectors) and self.peers is None:
            raise ValueError("give at least one audience selector")
        return self


class CampaignSpec(AccountChoice):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(None, max_length=1000)
    type: Literal["broadcast", "lead_followup"] = "broadcast"
    audience: Audience
    steps: list[CampaignStep] = Field(min_length=1, max_length=20)
    priority: QueuedPriority = "normal"
    start_at: AwareDatetime | None = Field(None, description="Start by itself then (status `scheduled`).")
    end_at: AwareDatetime | None = Field(None, description="Stop by itself then; unsent jobs are cancelled.")
    daily_limit: int | None = Field(None, ge=1, le=100_000, description="Sends per day for this campaign.")
    tags: list[Tag] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _window(self) -> CampaignSpec:
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise ValueError("endAt must be after startAt")
        return self


class CampaignCounters(Response):
    targets: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = Field(0, description="Jobs cancelled by a stop, a removal or the end of the window.")
    replied: int = 0


class CampaignView(CampaignSpec, Response):
    model_config = Response.model_config

    id: str
    status: CampaignStatus
    counters: CampaignCounters = Field(default_factory=CampaignCounters)
    last_error: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class AddCampaignRequest(CampaignSpec):
    id: Id | None = Field(None, description="Replace this campaign's definition (CONFLICT while running).")


class AddCampaign(
    Command,
    name="add-campaign",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=AddCampaignRequest,
    response=CampaignView,
):
    """Create a campaign as a draft (or redefine one that is not running)."""


class RemoveCampaignRequest(Request):
    id: Id


class RemoveCampaign(
    Command,
    name="remove-campaign",
    owner=C,
    domain=AUTOMATION,
    role=Role.ADMIN,
    request=RemoveCampaignRequest,
    response=Ack,
):
    """Delete a campaign and cancel its waiting jobs (sent history stays)."""


class GetCampaignsRequest(PageRequest):
    statuses: list[CampaignStatus] | None = Field(None, min_length=1)
    type: Literal["broadcast", "lead_followup"] | None = None
    search: str | None = Field(None, min_length=1, max_length=100)


class GetCampaigns(
    Command,
    name="get-campaigns",
    owner=C,
    domain=AUTOMATION,
    role=Role.VIEWER,
    request=GetCampaignsRequest,
    response=Page[CampaignView],
):
    """List campaigns, newest first, with their counters."""


class CampaignIdRequest(Request):
    campaign_id: Id


class StartCampaign(
    Command,
    name="start-campaign",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=CampaignIdRequest,
    response=CampaignView,
):
    """Start (or resume) a campaign: its audience is resolved and its jobs are queued."""


class StopCampaignRequest(CampaignIdRequest):
    cancel_pending: bool = Field(True, description="Cancel its waiting jobs (reason `campaign_stopped`).")


class StopCampaign(
    Command,
    name="stop-campaign",
    owner=C,
    domain=AUTOMATION,
    role=Role.OPERATOR,
    request=StopCampaignRequest,
    response=CampaignView,
):
    """Stop a campaign; in-flight sends finish."""


class GetCampaignStatsRequest(Request):
    campaign_id: Id | None = Field(None, description="One campaign; every campaign when omitted.")
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    by_day: bool = False


class StepStats(Response):
    step: int
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    replied: int = 0


class AccountSendStats(Response):
    account_id: str
    sent: int = 0
    failed: int = 0


class DaySendStats(Response):
    day: date
    sent: int = 0
    failed: int = 0
    replied: int = 0


class CampaignStats(Response):
    campaign_id: str
    name: str
    status: CampaignStatus
    counters: CampaignCounters
    skipped_by_reason: dict[str, int] = Field(
        default_factory=dict, description="Skipped jobs by reason (blacklisted, opted_out, recipient_cap...)."
    )
    reply_rate: float | None = Field(None, ge=0, le=1)
    won: int = Field(0, description="Its leads now in `closed_won`.")
    by_step: list[StepStats] = Field(default_factory=list)
    by_account: list[AccountSendStats] = Field(default_factory=list)
    by_day: list[DaySendStats] = Field(default_factory=list)


class CampaignStatsReport(Response):
    items: list[CampaignStats]
    totals: CampaignCounters
    intent: dict[IntentLevel, int] = Field(default_factory=dict, description="Their leads by intent level.")


class GetCampaignStats(
    Command,
    name="get-campaign-stats",
    owner=C,
    domain=AUTOMATION,
    role=Role.VIEWER,
    request=GetCampaignStatsRequest,
    response=CampaignStatsReport,
):
    """Sends, failures, replies and conversions per campaign, step, account and day."""
