"""The 15 tg-session commands outside the `account` domain: Telegram operations other services and the
console use (join, leave, search groups, list members, create groups), member extraction as a background
job with collected users and their export, and the API credential pool.

Every command here that makes an account talk to Telegram answers FLOOD_WAIT (with `retry_after`) or
TELEGRAM_ERROR (with `details.telegramError`) when Telegram refuses, and UNAVAILABLE when no replica
holds the account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, Field, model_validator

from ..base import Page, PageRequest, Request, Response
from ..command import Command
from ..enums import Domain, Role, Service
from ..models.analytics import ExportFile
from ..models.session import (
    AccountId,
    AccountSelector,
    ApiCredentialView,
    ApiHash,
    ChatRef,
    ChatView,
    CollectedUserView,
    CreatedGroupView,
    ExtractionFilters,
    ExtractionJobView,
    ExtractionSource,
    ExtractionState,
    GroupMemberView,
    PeerRef,
    Phone,
    Presence,
    SecretRequest,
)

TS = Service.TG_SESSION


class OptionalAccount(Request):
    """An account to act with; when omitted, tg-session picks an active account it holds."""

    account_id: AccountId | None = Field(
        None, validation_alias=AliasChoices("accountId", "account_id"), serialization_alias="accountId"
    )
    phone: Phone | None = Field(None, description="The account by phone instead of id.")


# --- automation: groups --------------------------------------------------------------------------


class JoinGroupRequest(AccountSelector):
    group: ChatRef = Field(
        validation_alias=AliasChoices("group", "groupUrl", "group_url"),
        serialization_alias="group",
        description="Username, t.me link, invite link or `+hash` (the earlier client's `groupUrl`).",
    )


class JoinGroupResult(Response):
    account_id: str
    chat: ChatView | None = Field(None, description="Null while a join request awaits an admin's approval.")
    already_member: bool = False
    pending_approval: bool = Field(False, description="The invite needs approval; a request was sent.")


class JoinGroup(
    Command,
    name="join-group",
    owner=TS,
    domain=Domain.AUTOMATION,
    role=Role.OPERATOR,
    request=JoinGroupRequest,
    response=JoinGroupResult,
    timeout=30,
):
    """Make an account join a group or channel by username, link or invite hash."""


class LeaveGroupRequest(AccountSelector):
    group: ChatRef = Field(
        validation_alias=AliasChoices("group", "groupId", "group_id"), serialization_alias="group"
    )


class LeaveGroupResult(Response):
    account_id: str
    chat_id: int
    was_member: bool


class LeaveGroup(
    Command,
    name="leave-group",
    owner=TS,
    domain=Domain.AUTOMATION,
    role=Role.OPERATOR,
    request=LeaveGroupRequest,
    response=LeaveGroupResult,
    timeout=30,
):
    """Make an account leave a group or channel."""


class SearchGroupsRequest(OptionalAccount):
    keyword: str = Field(
        min_length=2,
        max_length=64,
        validation_alias=AliasChoices("keyword", "query"),
        serialization_alias="keyword",
    )
    kinds: list[Literal["group", "supergroup", "channel"]] | None = Field(
        None, description="All kinds when omitted."
    )
    min_members: int | None = Field(None, ge=0)
    limit: int = Field(50, ge=1, le=100)


class SearchGroupsResult(Response):
    keyword: str
    account_id: str
    items: list[ChatView]


class SearchGroups(
    Command,
    name="search-groups",
    owner=TS,
    domain=Domain.AUTOMATION,
    role=Role.OPERATOR,
    request=SearchGroupsRequest,
    response=SearchGroupsResult,
    timeout=30,
):
    """Search Telegram's public groups and channels by keyword, through one account."""


class GetGroupMembersRequest(OptionalAccount, PageRequest):
    group: ChatRef = Field(
        validation_alias=AliasChoices("group", "groupId", "chatId"), serialization_alias="group"
    )
    filter: Literal["recent", "admins", "bots", "search"] = "recent"
    query: str | None = Field(None, min_length=1, max_length=64, description="For `filter: search`.")
    limit: int = Field(100, ge=1, le=200)

    @model_validator(mode="after")
    def _query(self) -> GetGroupMembersRequest:
        if self.filter == "search" and not self.query:
            raise ValueError("filter search needs a query")
        return self


class GetGroupMembers(
    Command,
    name="get-group-members",
    owner=TS,
    domain=Domain.AUTOMATION,
    role=Role.VIEWER,
    request=GetGroupMembersRequest,
    response=Page[GroupMemberView],
    timeout=30,
):
    """One page of a group's members as Telegram lists them (live; extraction stores them instead)."""


# --- contacts: member extraction -----------------------------------------------------------------


class ExtractMembersRequest(AccountSelector):
    group: ChatRef = Field(
        validation_alias=AliasChoices("group", "chatId", "chat_id", "telegramId", "username"),
        serialization_alias="group",
        description="The chat to extract; the account must be able to see its members (or its messages).",
    )
    source: ExtractionSource = Field(
        "participants", description="`participants`: the member list; `messages`: users who posted recently."
    )
    message_limit: int = Field(
        1000, ge=1, le=100_000, description="For `messages`: how many recent posts to read."
    )
    limit: int | None = Field(
        None, ge=1, le=1_000_000, description="Stop after this many users; all when null."
    )
    filters: ExtractionFilters = Field(default_factory=ExtractionFilters)


class ExtractMembers(
    Command,
    name="extract-members",
    owner=TS,
    domain=Domain.CONTACTS,
    role=Role.OPERATOR,
    request=ExtractMembersRequest,
    response=ExtractionJobView,
):
    """Start a paced, resumable background extraction; progress comes as `extraction-progress` events."""


class GetExtractionStatusRequest(Request):
    job_id: str | None = Field(
        None, min_length=1, max_length=64, description="One job; the latest ones otherwise."
    )
    account_id: AccountId | None = None
    state: list[ExtractionState] | None = None
    limit: int = Field(20, ge=1, le=200)


class ExtractionJobList(Response):
    items: list[ExtractionJobView]


class GetExtractionStatus(
    Command,
    name="get-extraction-status",
    owner=TS,
    domain=Domain.CONTACTS,
    role=Role.VIEWER,
    request=GetExtractionStatusRequest,
    response=ExtractionJobList,
):
    """Progress of one extraction job, or of the latest ones."""


class JobRef(Request):
    job_id: str = Field(min_length=1, max_length=64)


class CancelExtraction(
    Command,
    name="cancel-extraction",
    owner=TS,
    domain=Domain.CONTACTS,
    role=Role.OPERATOR,
    request=JobRef,
    response=ExtractionJobView,
):
    """Stop an extraction; users collected so far are kept (CONFLICT if it already ended)."""


class CollectedUserFilters(Request):
    job_id: str | None = Field(None, min_length=1, max_length=64)
    source_chat_id: int | None = None
    account_id: AccountId | None = None
    has_username: bool | None = None
    is_bot: bool | None = None
    is_premium: bool | None = None
    presence: list[Presence] | None = None
    active_within_days: int | None = Field(None, ge=1, le=365)
    text: str | None = Field(None, min_length=1, max_length=100, description="In username and names.")
    collected_since: datetime | None = None
    collected_until: datetime | None = None


class GetCollectedUsersRequest(CollectedUserFilters, PageRequest):
    sort: Literal["collected_at", "last_online_at", "username"] = "collected_at"
    order: Literal["asc", "desc"] = "desc"


class GetCollectedUsers(
    Command,
    name="get-collected-users",
    owner=TS,
    domain=Domain.CONTACTS,
    role=Role.VIEWER,
    request=GetCollectedUsersRequest,
    response=Page[CollectedUserView],
):
    """Users gathered by extraction, filtered and a page at a time."""


CollectedUserColumn = Literal[
    "user_id",
    "username",
    "first_name",
    "last_name",
    "phone",
    "is_bot",
    "is_premium",
    "presence",
    "last_online_at",
    "source_chat_id",
    "source_chat_title",
    "member_role",
    "job_id",
    "collected_at",
]


class ExportCollectedUsersRequest(CollectedUserFilters):
    format: Literal["csv", "xlsx"] = "csv"
    columns: list[CollectedUserColumn] | None = Field(
        None, min_length=1, description="All columns when omitted."
    )
    max_rows: int = Field(100_000, ge=1, le=1_000_000)


class ExportCollectedUsers(
    Command,
    name="export-collected-users",
    owner=TS,
    domain=Domain.CONTACTS,
    role=Role.VIEWER,
    request=ExportCollectedUsersRequest,
    response=ExportFile,
    timeout=120,
):
    """Export collected users as CSV (UTF-8 with header) or XLSX."""


# --- system: groups we create --------------------------------------------------------------------


class CreateGroupRequest(AccountSelector):
    title: str = Field(
        min_length=1,
        max_length=128,
        validation_alias=AliasChoices("title", "name"),
        serialization_alias="title",
    )
    about: str | None = Field(
        None,
        max_length=255,
        validation_alias=AliasChoices("about", "description"),
        serialization_alias="about",
    )
    kind: Literal["supergroup", "group", "channel"] = Field(
        "supergroup", validation_alias=AliasChoices("kind", "type"), serialization_alias="kind"
    )
    username: str | None = Field(
        None, pattern=r"^[A-Za-z][A-Za-z0-9_]{4,31}$", description="Makes it public."
    )
    members: list[PeerRef] = Field(default_factory=list, max_length=200, description="Invited on creation.")
    forum: bool = Field(False, description="Topics on (supergroups only).")

    @model_validator(mode="after")
    def _kind(self) -> CreateGroupRequest:
        if self.kind == "group" and not self.members:
            raise ValueError("Telegram creates a basic group only with at least one member")
        if self.forum and self.kind != "supergroup":
            raise ValueError("forum is only for supergroups")
        return self


class CreateGroup(
    Command,
    name="create-group",
    owner=TS,
    domain=Domain.SYSTEM,
    role=Role.OPERATOR,
    request=CreateGroupRequest,
    response=CreatedGroupView,
    timeout=60,
):
    """Create a group or channel with one account and invite members; recorded as a created group."""


class GetCreatedGroupsRequest(PageRequest):
    account_id: AccountId | None = None
    kind: Literal["supergroup", "group", "channel"] | None = None


class GetCreatedGroups(
    Command,
    name="get-created-groups",
    owner=TS,
    domain=Domain.SYSTEM,
    role=Role.VIEWER,
    request=GetCreatedGroupsRequest,
    response=Page[CreatedGroupView],
):
    """Groups and channels our accounts created, newest first."""


# --- system: API credential pool -----------------------------------------------------------------


class SaveApiCredentialRequest(SecretRequest):
    """Create (no `id`) or update a pool credential. On update, omitted fields keep their value."""

    id: str | None = Field(None, min_length=1, max_length=64)
    api_id: int | None = Field(None, ge=1, le=2**31 - 1)
    api_hash: ApiHash | None = None
    name: str | None = Field(None, min_length=1, max_length=64)
    max_accounts: int | None = Field(
        None, ge=1, le=1000, description="Accounts that may share it; 5 for new ones."
    )
    is_active: bool | None = None
    test: bool = Field(True, description="Check it with Telegram before saving; refuse an invalid one.")

    @model_validator(mode="after")
    def _create_needs_pair(self) -> SaveApiCredentialRequest:
        if self.id is None and (self.api_id is None or self.api_hash is None):
            raise ValueError("a new credential needs apiId and apiHash")
        return self


class SaveApiCredential(
    Command,
    name="save-api-credential",
    owner=TS,
    domain=Domain.SYSTEM,
    role=Role.ADMIN,
    request=SaveApiCredentialRequest,
    response=ApiCredentialView,
    timeout=30,
):
    """Add or change an API credential of the pool (CONFLICT if the api_id is already there)."""


class GetApiCredentialsRequest(Request):
    active_only: bool = False


class ApiCredentialList(Response):
    items: list[ApiCredentialView]
    capacity: int = Field(description="Sum of maxAccounts over active credentials.")
    in_use: int = Field(description="Accounts assigned to a pooled credential.")


class GetApiCredentials(
    Command,
    name="get-api-credentials",
    owner=TS,
    domain=Domain.SYSTEM,
    role=Role.VIEWER,
    request=GetApiCredentialsRequest,
    response=ApiCredentialList,
):
    """The API credential pool with usage; hashes masked."""


class DeleteApiCredentialRequest(Request):
    id: str = Field(
        min_length=1,
        max_length=64,
        validation_alias=AliasChoices("id", "credentialId"),
        serialization_alias="id",
    )
    reassign_to: str | None = Field(
        None, min_length=1, max_length=64, description="Move its accounts to this one."
    )
    reassign_to_pool: bool = Field(False, description="Move its accounts to whatever the pool assigns.")

    @model_validator(mode="after")
    def _one_target(self) -> DeleteApiCredentialRequest:
        if self.reassign_to is not None and self.reassign_to_pool:
            raise ValueError("give reassignTo or reassignToPool, not both")
        if self.reassign_to == self.id:
            raise ValueError("cannot reassign a credential's accounts to itself")
        return self


class DeleteApiCredentialResult(Response):
    id: str
    deleted: bool
    reassigned_accounts: int = 0


class DeleteApiCredential(
    Command,
    name="delete-api-credential",
    owner=TS,
    domain=Domain.SYSTEM,
    role=Role.ADMIN,
    request=DeleteApiCredentialRequest,
    response=DeleteApiCredentialResult,
):
    """Delete a pool credential; refused with CONFLICT while accounts use it, unless they are reassigned."""


class ApiCredentialTestRequest(SecretRequest):
    id: str | None = Field(None, min_length=1, max_length=64, description="A pool credential…")
    api_id: int | None = Field(None, ge=1, le=2**31 - 1, description="…or a pair not saved yet.")
    api_hash: ApiHash | None = None

    @model_validator(mode="after")
    def _one(self) -> ApiCredentialTestRequest:
        pair = self.api_id is not None and self.api_hash is not None
        if (self.api_id is None) != (self.api_hash is None):
            raise ValueError("apiId and apiHash go together")
        if (self.id is not None) == pair:
            raise ValueError("give either id or apiId with apiHash")
        return self


class ApiCredentialTest(Response):
    ok: bool
    api_id: int
    credential_id: str | None = None
    latency_ms: float | None = None
    error: str | None = Field(None, description="E.g. `API_ID_INVALID`.")
    tested_at: datetime


class TestApiCredential(
    Command,
    name="test-api-credential",
    owner=TS,
    domain=Domain.SYSTEM,
    role=Role.OPERATOR,
    request=ApiCredentialTestRequest,
    response=ApiCredentialTest,
    timeout=30,
):
    """Check with Telegram that an api_id/api_hash pair is accepted; records the result on a pool entry."""

    __test__ = False  # not a pytest class, despite its name
