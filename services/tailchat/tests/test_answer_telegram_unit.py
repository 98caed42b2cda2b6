"""answer-callback with `channel: telegram` is handed to tg-session, without any Tailchat call."""

from __future__ import annotations

import pytest
from tgm_contracts.commands import channels as cmd
from tgm_runtime import DomainError
from tgm_tailchat.messages.service import MessageService
from tgm_tailchat.pacing import AnswerBudget

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


async def _no_tailchat(app_id: str):
    raise AssertionError("a Telegram press asked for a Tailchat app")


def service(telegram) -> MessageService:
    return MessageService(
        None, None, _no_tailchat, _no_tailchat, AnswerBudget(1, 60), memory_days=1, telegram=telegram
    )  # type: ignore[arg-type]


async def test_a_telegram_press_goes_to_tg_session() -> None:
    handed: list[cmd.AnswerCallbackRequest] = []

    async def telegram(req: cmd.AnswerCallbackRequest) -> cmd.CallbackAnswered:
        handed.append(req)
        return cmd.CallbackAnswered(app_id=req.app_id, trace_id=req.trace_id)

    req = cmd.AnswerCallbackRequest.model_validate(
        {
            "channel": "telegram",
            "appId": "tg-7000000001",
            "traceId": "-4242",
            "userId": "7000000002",
            "text": "OK",
        }
    )
    done = await service(telegram).answer(req)
    assert done.trace_id == "-4242" and handed == [req]


async def test_without_tg_session_wired_it_is_unavailable() -> None:
    req = cmd.AnswerCallbackRequest.model_validate(
        {"channel": "telegram", "appId": "tg-1", "traceId": "1", "userId": "2", "text": "OK"}
    )
    with pytest.raises(DomainError) as info:
        await service(None).answer(req)
    assert info.value.code.value == "UNAVAILABLE"
