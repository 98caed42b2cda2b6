"""The collaboration script state machine (`collaboration/script_engine.py`): every trigger kind,
line timing, branches, timeouts, failure actions, the success condition, and resuming from the
persisted state (a run rebuilt from its document after every step decides exactly the same)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tgm_campaign.collaboration import script_engine as eng
from tgm_contracts.commands.collaboration import ScriptSpec

pytestmark = [pytest.mark.component, pytest.mark.timeout(10)]


def line(slot: str, text: str, delay: int = 0, jitter: int = 0) -> dict[str, Any]:
    return {"slot": slot, "type": "text", "text": text, "delaySeconds": delay, "jitterSeconds": jitter}


def script(*stages: dict[str, Any], success: dict[str, Any] | None = None) -> ScriptSpec:
    return ScriptSpec.model_validate(
        {
            "name": "s",
            "roles": [{"key": "expert"}, {"key": "buyer"}, {"key": "support"}],
            "stages": list(stages),
            **({"success": success} if success else {}),
        }
    )


class Driver:
    """Plays a run: each round rebuilds the state from its saved document (as a restart would)."""

    def __init__(self, spec: ScriptSpec, *, at: float = 1000.0, persist: bool = True) -> None:
        self.spec, self.persist = spec, persist
        self.state = eng.begin("r1", at)
        self.queued: list[eng.LineOrder] = []
        self.cancelled = 0

    def _load(self) -> eng.RunState:
        if not self.persist:
            return self.state
        return eng.RunState.of(json.loads(json.dumps(self.state.to_doc())))

    def _apply(self, state: eng.RunState, fx: eng.Effects) -> eng.Effects:
        self.state = state
        if fx.queue is not None:
            self.queued.append(fx.queue)
            assert state.pending is not None
            state.pending.job_id = "job-" + fx.queue.key
        if fx.cancel:
            self.cancelled += 1
        return fx

    def tick(self, now: float, settled: eng.Settled | None = None) -> eng.Effects:
        state = self._load()
        return self._apply(state, eng.step(self.spec, state, now, settled))

    def sent(self, at: float) -> eng.Effects:
        return self.tick(at, eng.Settled(True, at))

    def said(self, mid: int, text: str, now: float) -> eng.Effects:
        state = self._load()
        fx = eng.on_target_message(self.spec, state, mid, text, now)
        self._apply(state, fx)
        return self.tick(now)

    @property
    def keys(self) -> list[str]:
        return [q.key for q in self.queued]


def test_time_trigger_and_line_delays_in_order() -> None:
    d = Driver(
        script(
            {
                "trigger": {"type": "time", "delaySeconds": 30},
                "lines": [line("expert", "a", 5), line("buyer", "b", 10)],
            }
        )
    )
    assert d.tick(1029).queue is None  # the stage starts at 1030
    assert d.tick(1034).queue is None  # line 0: 5 s after the stage started
    assert d.tick(1035).queue is not None
    assert d.tick(1100).queue is None  # pending: nothing until its job settles
    d.sent(1040)
    assert d.state.sent == 1 and d.tick(1049).queue is None  # line 1: 10 s after line 0 was sent
    assert d.tick(1050).queue is not None
    fx = d.sent(1051)
    assert fx.cancel and d.state.status == "completed" and d.state.outcome == "no_response"
    assert d.keys == ["col:r1:0:0", "col:r1:0:1"]
    assert eng.next_check(d.spec, d.state) is None


def test_jitter_is_bounded_and_the_same_after_a_restart() -> None:
    spec = script({"lines": [line("expert", "a", 10, 20)]})
    due = eng.next_check(spec, eng.RunState(run_id="r1", phase="speak", since=0.0))
    assert due is not None and 10 <= due <= 30
    assert due == eng.next_check(spec, eng.RunState(run_id="r1", phase="speak", since=0.0))
    others = {eng.jitter(f"r{i}", 0, 0, 0, 20) for i in range(20)}
    assert len(others) > 10 and all(0 <= j <= 20 for j in others)


def test_typing_time_from_speed() -> None:
    assert eng.typing_seconds("x" * 100, 200) == pytest.approx(30.0)
    assert eng.typing_seconds("x" * 100, 200, simulate=False) == 0.0
    assert eng.typing_seconds("x" * 10_000, 20) == 120.0


def test_message_trigger_waits_for_the_target() -> None:
    d = Driver(
        script(
            {"lines": [line("expert", "hello")]},
            {"trigger": {"type": "message"}, "lines": [line("buyer", "me too")]},
        )
    )
    d.tick(1000)
    d.sent(1001)
    assert d.tick(5000).queue is None and eng.waiting_for(d.spec, d.state) == "message"
    fx = d.said(77, "what is this?", 6000)
    assert fx.queue is not None and fx.queue.key == "col:r1:1:0"
    assert d.state.replies == 1
    d.sent(6001)
    assert d.state.status == "completed" and d.state.outcome == "replied"


def test_a_message_seen_by_several_accounts_counts_once() -> None:
    d = Driver(
        script(
            {"lines": [line("expert", "hello")]},
            {"trigger": {"type": "message"}, "lines": [line("buyer", "x")]},
        )
    )
    d.tick(1000)
    d.sent(1001)
    d.said(5, "hi", 1002)
    d.said(5, "hi", 1002)
    assert d.state.replies == 1 and d.keys == ["col:r1:0:0", "col:r1:1:0"]


def test_keyword_trigger_ignores_other_messages() -> None:
    d = Driver(
        script(
            {"lines": [line("expert", "hello")]},
            {"trigger": {"type": "keyword", "keywords": ["price"]}, "lines": [line("support", "it is 10")]},
        )
    )
    d.tick(1000)
    d.sent(1001)
    assert d.said(1, "nice", 1002).queue is None
    assert d.said(2, "unpriced", 1003).queue is None  # whole words only
    assert d.said(3, "What's the PRICE?", 1004).queue is not None
    assert d.state.replies == 3


def test_manual_trigger_waits_for_an_operator() -> None:
    d = Driver(script({"trigger": {"type": "manual"}, "lines": [line("expert", "go")]}))
    assert d.tick(99_999).queue is None and eng.waiting_for(d.spec, d.state) == "manual"
    assert d.said(1, "hello?", 100_000).queue is None  # a message is not the operator
    state = d._load()
    fx = eng.manual(d.spec, state, 100_001)
    assert fx.changed and fx.stage_started
    d.state = state
    assert d.tick(100_001).queue is not None
    assert not eng.manual(d.spec, d.state, 100_002).changed  # it no longer waits for one


def test_timeout_stop_ends_with_no_response() -> None:
    d = Driver(
        script(
            {"lines": [line("expert", "hello")]},
            {"trigger": {"type": "message", "timeoutSeconds": 60}, "lines": [line("buyer", "x")]},
        )
    )
    d.tick(1000)
    d.sent(1001)
    assert eng.next_check(d.spec, d.state) == 1061
    assert d.tick(1060).queue is None and d.state.status == "running"
    fx = d.tick(1061)
    assert fx.cancel and d.state.status == "completed" and d.state.outcome == "no_response"


def test_timeout_continue_starts_the_stage() -> None:
    d = Driver(
        script(
            {"lines": [line("expert", "hello")]},
            {
                "trigger": {
                    "type": "keyword",
                    "keywords": ["yes"],
                    "timeoutSeconds": 60,
                    "onTimeout": "continue",
                },
                "lines": [line("buyer", "anyone?")],
            },
        )
    )
    d.tick(1000)
    d.sent(1001)
    fx = d.tick(1061)
    assert fx.queue is not None and fx.queue.key == "col:r1:1:0"


def test_branch_jumps_forward_and_wins_over_the_next_trigger() -> None:
    spec = script(
        {
            "lines": [line("expert", "any questions?")],
            "branches": [{"keywords": ["expensive", "cost"], "gotoStage": 2}],
        },
        {"trigger": {"type": "message"}, "lines": [line("buyer", "great, right?")]},
        {"trigger": {"type": "manual"}, "lines": [line("support", "we have a discount")]},
    )
    d = Driver(spec)
    d.tick(1000)
    d.sent(1001)
    fx = d.said(9, "too expensive for me", 1010)
    assert fx.queue is not None and fx.queue.key == "col:r1:2:0"  # the branch, not stage 1
    d.sent(1011)
    assert d.state.status == "completed" and d.keys == ["col:r1:0:0", "col:r1:2:0"]
    # Without the branch's keyword the next stage's own trigger applies.
    d2 = Driver(spec)
    d2.tick(1000)
    d2.sent(1001)
    assert d2.said(9, "sounds good", 1010).queue is not None and d2.keys[-1] == "col:r1:1:0"


def test_a_branch_must_go_forward() -> None:
    with pytest.raises(ValueError, match="later stage"):
        script({"lines": [line("expert", "a")], "branches": [{"keywords": ["x"], "gotoStage": 0}]})
    with pytest.raises(ValueError, match="later stage"):
        script({"lines": [line("expert", "a")], "branches": [{"keywords": ["x"], "gotoStage": 3}]})


def test_failure_skip_goes_on() -> None:
    d = Driver(script({"lines": [line("expert", "a"), line("buyer", "b")]}))
    d.tick(1000)
    fx = d.tick(1001, eng.Settled(False, 1001, "failed:telegram_error"))
    assert fx.queue is not None and fx.queue.key == "col:r1:0:1"
    assert d.state.error is not None and "line 1" in d.state.error and d.state.sent == 0


def test_failure_stop_fails_the_run() -> None:
    d = Driver(script({"lines": [line("expert", "a"), line("buyer", "b")], "onFailure": "stop"}))
    d.tick(1000)
    fx = d.tick(1001, eng.Settled(False, 1001, "skipped:account_unavailable"))
    assert fx.cancel and d.state.status == "failed" and d.state.outcome == "failed"
    assert "account_unavailable" in (d.state.error or "")


def test_failure_retry_new_keys_then_fails() -> None:
    d = Driver(script({"lines": [line("expert", "a", 5)], "onFailure": "retry"}))
    d.tick(1005)
    assert d.tick(1006, eng.Settled(False, 1006, "failed")).queue is None  # waits the line's delay again
    assert d.tick(1011).queue is not None
    d.tick(1012, eng.Settled(False, 1012, "failed"))
    d.tick(1017)
    fx = d.tick(1018, eng.Settled(False, 1018, "failed"))
    assert d.keys == ["col:r1:0:0", "col:r1:0:0:r1", "col:r1:0:0:r2"]
    assert fx.cancel and d.state.status == "failed" and "retries" in (d.state.error or "")


def test_retry_succeeds() -> None:
    d = Driver(script({"lines": [line("expert", "a")], "onFailure": "retry"}))
    d.tick(1000)
    fx = d.tick(1001, eng.Settled(False, 1001, "failed"))  # no delay: queued again at once
    assert fx.queue is not None and fx.queue.key == "col:r1:0:0:r1"
    d.sent(1002)
    assert d.state.status == "completed" and d.state.sent == 1


def test_success_keyword_converts_and_ends() -> None:
    d = Driver(
        script(
            {"lines": [line("expert", "a")]},
            {"trigger": {"type": "message"}, "lines": [line("buyer", "b")]},
            success={"keywords": ["deal"]},
        )
    )
    d.tick(1000)
    d.sent(1001)
    fx = d.said(3, "ok, deal!", 1002)
    assert d.state.status == "completed" and d.state.outcome == "converted" and d.state.success
    assert fx.queue is None and d.keys == ["col:r1:0:0"]


def test_success_min_replies_plays_on_without_end_run() -> None:
    d = Driver(
        script(
            {"lines": [line("expert", "a")]},
            {"trigger": {"type": "message"}, "lines": [line("buyer", "b")]},
            success={"minReplies": 1, "endRun": False},
        )
    )
    d.tick(1000)
    d.sent(1001)
    assert d.said(3, "hm", 1002).queue is not None and d.state.success
    d.sent(1003)
    assert d.state.outcome == "converted"


def test_stop_and_fail_end_once() -> None:
    d = Driver(script({"lines": [line("expert", "a")]}))
    d.tick(1000)
    fx = eng.stop(d.state, 1001, reason="operator")
    assert fx.cancel and d.state.status == "stopped" and d.state.outcome == "stopped"
    assert not eng.stop(d.state, 1002).changed and not eng.fail(d.state, 1002, "x").changed
    assert eng.step(d.spec, d.state, 1003, eng.Settled(True, 1003)).queue is None
    assert not eng.on_target_message(d.spec, d.state, 1, "hi", 1004).changed


def test_resume_from_persisted_state_decides_the_same() -> None:
    spec = script(
        {
            "trigger": {"type": "time", "delaySeconds": 3},
            "lines": [line("expert", "a", 2, 7), line("buyer", "b", 1, 3)],
        },
        {"trigger": {"type": "message"}, "lines": [line("support", "c", 4, 4)], "branches": []},
        {"trigger": {"type": "keyword", "keywords": ["more"]}, "lines": [line("expert", "d", 0, 9)]},
    )

    def play(persist: bool) -> list[tuple[str, float]]:
        d = Driver(spec, persist=persist)
        out: list[tuple[str, float]] = []
        now = 1000.0
        events = {1030.0: (1, "hello"), 1060.0: (2, "tell me more")}
        while d.state.status == "running" and now < 1200:
            for at, (mid, text) in events.items():
                if at == now:
                    d.said(mid, text, now)
            fx = d.tick(now)
            if fx.queue is not None:
                out.append((fx.queue.key, now))
            if d.state.pending is not None and out and now >= out[-1][1] + 1:
                d.sent(now)
            now += 0.5
        assert d.state.status == "completed"
        return out

    assert play(True) == play(False)
    assert [k for k, _ in play(True)] == ["col:r1:0:0", "col:r1:0:1", "col:r1:1:0", "col:r1:2:0"]


def test_state_round_trips_through_its_document() -> None:
    s = eng.RunState(run_id="r9", phase="speak", stage=1, line=2, pending=eng.Pending(1, 2, 0, "k", "j"))
    s.seen = [1, 2]
    again = eng.RunState.of(json.loads(json.dumps(s.to_doc())))
    assert again == s
