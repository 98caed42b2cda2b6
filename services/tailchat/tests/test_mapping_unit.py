"""The Tailchat refusals the fork sends (mostly HTTP 500 with `{name, message, code}`) mapped to our
codes, the envelope read both wrapped and bare, and the two pacers on a hand-driven clock."""

from __future__ import annotations

import httpx
import pytest
from tgm_contracts import ErrorCode
from tgm_tailchat.adapters.errors import refusal
from tgm_tailchat.adapters.tailchat import WHOAMI, AppCredentials, TailchatClient
from tgm_tailchat.metrics import TailchatMetrics
from tgm_tailchat.pacing import AnswerBudget, CallPacer

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


def body(message: str, code: int = 500, name: str = "Error") -> dict:
    return {"name": name, "message": message, "code": code}


@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        (500, "Open app secret not match", ErrorCode.UPSTREAM_AUTH),
        (500, "Not found open app with the provided token", ErrorCode.UPSTREAM_AUTH),
        (500, "Invalid appSecret format", ErrorCode.UPSTREAM_AUTH),
        (500, "Open app not enabled capability:bot", ErrorCode.UPSTREAM_AUTH),
        (500, "Bot capability is not enabled for this app", ErrorCode.UPSTREAM_AUTH),
        (401, "Unauthorized", ErrorCode.UPSTREAM_AUTH),
        (500, "Invalid or expired traceId", ErrorCode.CONFLICT),
        (500, "TraceId does not belong to this bot", ErrorCode.VALIDATION_ERROR),
        (500, "UserId mismatch", ErrorCode.VALIDATION_ERROR),
        (500, "Text too long (max 200 characters)", ErrorCode.VALIDATION_ERROR),
        (500, "Rate limit exceeded", ErrorCode.RATE_LIMITED),
        (500, "Bot username already exists and cannot be modified", ErrorCode.CONFLICT),
        (500, "Not allowed fields", ErrorCode.VALIDATION_ERROR),
        (500, "invalid userId", ErrorCode.VALIDATION_ERROR),
        (500, "无法删除私人信息", ErrorCode.CONFLICT),
        (403, "没有当前会话权限", ErrorCode.CONFLICT),
        (404, "没有找到会话信息", ErrorCode.NOT_FOUND),
        (422, "Parameters validation error!", ErrorCode.VALIDATION_ERROR),
        (442, "entity", ErrorCode.VALIDATION_ERROR),
        (500, "Cache service not available", ErrorCode.UNAVAILABLE),
        (502, "Bad Gateway", ErrorCode.UNAVAILABLE),
    ],
)
def test_refusals_map_to_our_codes_never_internal(status: int, message: str, code: ErrorCode) -> None:
    error = refusal(status, body(message, status), "op")
    assert error.code is code
    assert error.details["upstreamStatus"] == status and error.details["upstreamMessage"] == message
    if code is ErrorCode.RATE_LIMITED:
        assert error.retry_after == 60
    if "expired" in message:
        assert "expired" in error.message


def test_validation_fields_are_passed_on_without_values() -> None:
    data = [{"type": "required", "field": "converseId", "message": "is required", "actual": "secret?"}]
    error = refusal(422, {**body("Parameters validation error!", 422), "data": data}, "sendMessage")
    assert error.details["fields"] == [{"field": "converseId", "message": "is required", "type": "required"}]


async def call_with(response: httpx.Response) -> object:
    client = TailchatClient(
        CallPacer(1000),
        TailchatMetrics(),
        timeout=1,
        attempts=1,
        backoff=0,
        transport=httpx.MockTransport(lambda r: response),
    )
    try:
        return await client.call(AppCredentials("http://t", "app", "s"), WHOAMI)
    finally:
        await client.aclose()


async def test_answers_wrapped_bare_and_a_non_200_envelope() -> None:
    assert await call_with(httpx.Response(200, json={"code": 200, "data": {"_id": "b"}})) == {"_id": "b"}
    assert await call_with(httpx.Response(200, json={"code": 200})) is None
    assert await call_with(httpx.Response(200, json={"_id": "b", "nickname": "n"})) == {
        "_id": "b",
        "nickname": "n",
    }
    with pytest.raises(Exception) as info:
        await call_with(httpx.Response(200, text="<html>"))
    assert getattr(info.value, "code", None) is ErrorCode.UNAVAILABLE


def test_credentials_never_print_the_secret() -> None:
    assert "s3cr3t" not in repr(AppCredentials("http://t", "app", "s3cr3t"))


def test_call_pacer_spaces_one_apps_calls_not_anothers() -> None:
    now = [100.0]
    pacer = CallPacer(10, clock=lambda: now[0])
    assert [pacer.reserve("a") for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2])
    assert pacer.reserve("b") == 0.0
    now[0] += 1.0
    assert pacer.reserve("a") == 0.0


def test_answer_budget_starts_over_only_after_quiet_time() -> None:
    now = [0.0]
    budget = AnswerBudget(3, 60, clock=lambda: now[0])
    for _ in range(3):
        assert budget.take("bot") is None
        now[0] += 30  # under 60 s apart: the server's counter never resets
    wait = budget.take("bot")
    assert wait == pytest.approx(30)  # 60 s after the last counted answer
    now[0] += 30
    assert budget.take("bot") is None
    budget.give_back("bot")
    assert budget.take("bot") is None
