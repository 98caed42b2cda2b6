from __future__ import annotations

import pytest
from pydantic import ValidationError
from tgm_contracts import ErrorCode
from tgm_contracts import envelope as env

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


def test_ipc_envelopes_match_the_seed() -> None:
    req = env.IpcRequest.model_validate({"command": "get-settings", "payload": {}, "requestId": "r1"})
    assert (req.command, req.request_id) == ("get-settings", "r1")
    assert env.ipc_result("get-settings", {"a": 1}, "r1") == {
        "event": "get-settings-result",
        "data": {"a": 1},
        "requestId": "r1",
    }
    err = env.ipc_error(ErrorCode.NOT_FOUND, "nope", "r2")
    assert err == {"event": "error", "data": {"message": "nope", "code": "NOT_FOUND"}, "requestId": "r2"}


def test_ipc_request_needs_a_command() -> None:
    with pytest.raises(ValidationError):
        env.IpcRequest.model_validate({"payload": {}})


def test_reply_envelopes() -> None:
    assert env.parse_reply(env.ok({"x": 1})).data == {"x": 1}
    bad = env.parse_reply(env.error(ErrorCode.FLOOD_WAIT, "wait", retry_after=30))
    assert bad.error.code is ErrorCode.FLOOD_WAIT and bad.error.retry_after == 30
