"""Stored records into the contract views. No secret field is ever read here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from tgm_contracts.models.session import (
    AccountBrief,
    AccountState,
    AccountView,
    ApiCredentialView,
    IpBindingView,
    ProxyView,
)

from .store import Doc

WARMUP_DAYS = 7
ViewT = TypeVar("ViewT", bound=BaseModel)

_PENALTY = {
    "flood_wait": 20,
    "peer_flood": 50,
    "frozen": 70,
    "proxy_error": 30,
    "disconnected": 20,
    "unauthorized": 100,
    "banned": 100,
    "new": 0,
    "code_sent": 0,
    "password_needed": 0,
    "active": 0,
}


def record_view(view: type[ViewT], doc: Doc, **computed: Any) -> ViewT:
    """The view of a record stored under the view's own field names (`_id` is its `id`): a field the
    record lacks takes the view's default, a key the view does not declare is not read; `computed`
    gives the fields that are not stored as they are shown (counts, joined data)."""
    return view.model_validate({**doc, "id": doc["_id"], **computed})


def today(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%d")


def daily_count(doc: Doc, day: str | None = None) -> int:
    """Sends counted today (`day`, when a caller computed it once for many accounts)."""
    return int(doc.get("daily_send_count") or 0) if doc.get("daily_send_day") == (day or today()) else 0


def warmup_day(doc: Doc, now: datetime | None = None) -> int | None:
    if not doc.get("warmup_enabled", True):
        return None
    created = doc.get("created_at")
    if created is None:
        return None
    day = ((now or datetime.now(UTC)) - created).days + 1
    return day if day <= WARMUP_DAYS else None


def health_score(doc: Doc) -> int:
    return max(0, 100 - _PENALTY.get(doc.get("state", "new"), 0))


def account_fields(
    doc: Doc, *, holder: Any = ..., now: datetime | None = None, day: str | None = None
) -> Doc:
    """The fields of an account's view (`AccountView`'s own names), to be validated by the caller: one
    `AccountView.model_validate` for one account, one validation of the whole page for a list (pydantic
    checks the page in one call instead of three model constructions per account). `holder`, when
    given, is the live lease holder (the stored one may be stale after a crash); `now`, when given, is
    the moment every account of a page is shown at (today's send count and the warm-up day), and
    `day` its date, formatted once for the page (`today(now)`)."""
    stored_holder = doc.get("holder")
    live_holder = stored_holder if holder is ... else holder
    now = now or datetime.now(UTC)
    created = doc["created_at"]
    return {
        "id": doc["_id"],
        "phone": doc["phone"],
        "label": doc.get("label"),
        "state": doc["state"],
        "state_reason": doc.get("state_reason"),
        "state_changed_at": doc.get("state_changed_at"),
        "flood_wait_until": doc.get("flood_wait_until"),
        "cooldown_until": doc.get("cooldown_until"),
        "role": doc.get("role") or "unassigned",
        "group": doc.get("group"),
        "tags": doc.get("tags") or [],
        "persona_id": doc.get("persona_id"),
        "notes": doc.get("notes"),
        "profile": doc.get("profile") or {},
        "proxy": doc.get("proxy_view") or None,
        "api_credential_id": doc.get("api_credential_id"),
        "api_id": doc.get("api_id"),
        "device": doc.get("device") or {},
        "has_session": bool(doc.get("session_enc")),
        "two_factor_enabled": doc.get("two_factor_enabled"),
        "connected": bool(doc.get("connected")) and live_holder is not None and live_holder == stored_holder,
        "holder": live_holder,
        "daily_send_limit": doc.get("daily_send_limit", 50),
        "daily_send_count": daily_count(doc, day or today(now)),
        "health_score": health_score(doc),
        "warmup_enabled": doc.get("warmup_enabled", True),
        "warmup_day": warmup_day(doc, now),
        "ai_enabled": doc.get("ai_enabled", False),
        "ai_model": doc.get("ai_model"),
        "ai_personality": doc.get("ai_personality"),
        "last_login_at": doc.get("last_login_at"),
        "last_active_at": doc.get("last_active_at"),
        "created_at": created,
        "updated_at": doc.get("updated_at") or created,
    }


def account_view(doc: Doc, *, holder: Any = ...) -> AccountView:
    """`holder`, when given, is the live lease holder (the stored one may be stale after a crash)."""
    return AccountView.model_validate(account_fields(doc, holder=holder))


def account_brief(doc: Doc, holder: str | None, day: str | None = None) -> AccountBrief:
    profile = doc.get("profile") or {}
    return AccountBrief(
        id=doc["_id"],
        phone=doc["phone"],
        label=doc.get("label"),
        state=AccountState(doc["state"]),
        role=doc.get("role") or "unassigned",
        group=doc.get("group"),
        tags=doc.get("tags") or [],
        telegram_id=profile.get("telegram_id"),
        username=profile.get("username"),
        flood_wait_until=doc.get("flood_wait_until"),
        holder=holder,
        daily_send_count=daily_count(doc, day),
        daily_send_limit=doc.get("daily_send_limit", 50),
    )


def credential_view(doc: Doc, hash_tail: str | None, account_ids: list[str]) -> ApiCredentialView:
    return ApiCredentialView(
        id=doc["_id"],
        api_id=doc["api_id"],
        api_hash_masked="********" + (hash_tail or ""),
        name=doc.get("name"),
        source=doc.get("source", "manual"),
        is_active=doc.get("is_active", True),
        max_accounts=doc["max_accounts"],
        accounts_in_use=len(account_ids),
        account_ids=account_ids,
        last_tested_at=doc.get("last_tested_at"),
        last_test_ok=doc.get("last_test_ok"),
        last_test_error=doc.get("last_test_error"),
        created_at=doc["created_at"],
        updated_at=doc.get("updated_at"),
    )


def binding_view(doc: Doc) -> IpBindingView | None:
    binding = doc.get("binding")
    proxy = doc.get("proxy_view")
    if not binding or not proxy:
        return None
    return IpBindingView(
        account_id=doc["_id"],
        phone=doc.get("phone"),
        proxy=ProxyView.model_validate(proxy),
        exit_ip=binding.get("exit_ip"),
        country=binding.get("country") or proxy.get("country"),
        kind=binding.get("kind") or proxy.get("kind") or "unknown",
        reason=binding.get("reason"),
        is_active=binding.get("is_active", True),
        bound_at=binding["bound_at"],
        last_verified_at=binding.get("last_verified_at"),
        success_count=binding.get("success_count", 0),
        fail_count=binding.get("fail_count", 0),
        total_requests=binding.get("total_requests", 0),
        avg_latency_ms=binding.get("avg_latency_ms"),
    )
