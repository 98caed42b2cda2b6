"""A collaboration run's state machine, pure: no I/O, no clock, no randomness of its own.

The service (`service.py`) keeps a `RunState` in the run's document (`collaboration_runs.state`),
calls one of the transitions below with what happened, saves the state it returns (compare-and-set
on the document's `rev`), then carries out the returned `Effects` (queue the line, cancel waiting
jobs). Every transition is a function of (script, state, input): a state read back after a crash
gives the same decisions, so a restart resumes where the run was.

Phases of a run, stage by stage:

- `wait`: waiting for the trigger of stage `stage`, since `since` (the start of the run, or the
  moment the previous stage's last line was sent):
  - `time`: the stage starts `delaySeconds` after `since`;
  - `message`: at the target's next message; `keyword`: at a message of the target with one of the
    trigger's keywords (case-insensitive, whole words for Latin script, anywhere for CJK);
  - `manual`: when an operator says so (`start-collaboration {advanceRunId}`);
  - `timeoutSeconds` (message/keyword): past it, `onTimeout` `stop` ends the run (completed,
    outcome `no_response`) and `continue` starts the stage anyway.
  While waiting after stage i, a target's message that matches one of stage i's `branches` jumps to
  that branch's (later) stage, which starts at once; a branch wins over the next stage's trigger.
- `speak`: the stage's lines, one at a time and in order. Line j is due `delaySeconds` plus a jitter
  in [0, `jitterSeconds`] (deterministic per run, stage, line and attempt: `jitter()`) after line
  j-1 was *sent* (line 0: after the stage started); the service adds the typing time once it knows
  the text (`typing_seconds()`, from the role's typing speed). Only then is the line queued, so an
  AI line is written from the conversation as it is by then and a stopped run has little to cancel.
  The line's job is `pending` until it settles:
  - sent: the next line; after the last one, the next stage waits (or the run completes);
  - not sent (failed, skipped, cancelled, or the line could not be made, e.g. the AI failed): the
    stage's `onFailure`: `skip` the line, `stop` the run (failed), or `retry` it (up to
    `MAX_RETRIES` more times, each a new job key `...:r<n>`; then the run fails).
- `end`: completed (every stage played, or the success condition with `endRun`), stopped (an
  operator, a stop word, an opted-out or blacklisted target) or failed. Outcome `converted` when the
  success condition was met, else `replied` when the target wrote at least once, else
  `no_response`; `stopped` and `failed` for those ends.

Job keys: `col:<run>:<stage>:<line>` (a retry appends `:r<attempt>`). Branches only go forward,
so no stage is played twice and the key of a line is unique in its run: queueing it again (a
restart between the queue call and the save) answers the job already made, never a second one.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tgm_contracts.commands.collaboration import ScriptLine, ScriptSpec, ScriptStage

from ..messaging.compliance import normalise

MAX_RETRIES = 2
"""A `retry` stage re-queues a failed line this many more times before the run fails."""

SEEN_MESSAGES = 50
"""Target messages remembered per run (their ids), to count a message seen by several of our
accounts (one event each) once."""

Phase = Literal["wait", "speak", "end"]
Status = Literal["running", "completed", "stopped", "failed"]


@dataclass
class Pending:
    """The line whose job is queued and not settled yet."""

    stage: int
    line: int
    attempt: int
    key: str
    job_id: str | None = None


@dataclass
class RunState:
    run_id: str
    status: Status = "running"
    phase: Phase = "wait"
    stage: int = 0
    line: int = 0
    since: float = 0.0  # wait: when the wait began; speak: when the previous line was sent
    attempt: int = 0  # retries of the current line so far
    pending: Pending | None = None
    sent: int = 0
    replies: int = 0
    last_reply_at: float | None = None
    success: bool = False
    outcome: str | None = None
    error: str | None = None
    finished_at: float | None = None
    seen: list[int] = field(default_factory=list)

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, doc: dict[str, Any]) -> RunState:
        data = dict(doc)
        pending = data.pop("pending", None)
        state = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        state.pending = Pending(**pending) if pending else None
        return state

    @property
    def terminal(self) -> bool:
        return self.status != "running"


@dataclass
class LineOrder:
    """Queue this line now (the service makes its text, adds the typing time and queues it)."""

    stage: int
    line: int
    attempt: int
    key: str
    spec: ScriptLine


@dataclass
class Effects:
    queue: LineOrder | None = None
    cancel: bool = False  # cancel the run's waiting jobs (it ended)
    changed: bool = False  # the state changed: save it
    stage_started: bool = False


@dataclass
class Settled:
    """What became of the pending line's job."""

    sent: bool
    at: float
    reason: str | None = None


# --- helpers ---------------------------------------------------------------------------------------


def line_key(run_id: str, stage: int, line: int, attempt: int = 0) -> str:
    base = f"col:{run_id}:{stage}:{line}"
    return base if attempt == 0 else f"{base}:r{attempt}"


def jitter(run_id: str, stage: int, line: int, attempt: int, most: int) -> float:
    """A random delay in [0, most] seconds, the same every time it is asked for this line."""
    if most <= 0:
        return 0.0
    seed = int(hashlib.sha256(f"{run_id}|{stage}|{line}|{attempt}".encode()).hexdigest()[:12], 16)
    return random.Random(seed).uniform(0, most)


def typing_seconds(text: str, chars_per_minute: int, simulate: bool = True) -> float:
    """How long a person typing `chars_per_minute` takes to type `text` (capped at two minutes)."""
    if not simulate or not text or chars_per_minute <= 0:
        return 0.0
    return min(120.0, len(text) * 60.0 / chars_per_minute)


def _is_latin(word: str) -> bool:
    return all(ord(c) < 0x2E80 for c in word)


def matches(text: str | None, keywords: Iterable[str]) -> str | None:
    """The first keyword in `text` (normalised as stop words are: NFKC, case-folded): Latin ones as
    whole words or phrases, CJK ones anywhere."""
    if not text:
        return None
    norm = normalise(text)
    for kw in keywords:
        k = normalise(kw)
        if not k:
            continue
        if _is_latin(k):
            pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, k.split())) + r"(?!\w)"
            if re.search(pattern, norm):
                return kw
        elif k in norm:
            return kw
    return None


def total_lines(script: ScriptSpec) -> int:
    return sum(len(s.lines) for s in script.stages)


def waiting_for(script: ScriptSpec, state: RunState) -> str | None:
    if state.terminal or state.phase != "wait" or state.stage >= len(script.stages):
        return None
    return script.stages[state.stage].trigger.type


def next_check(script: ScriptSpec, state: RunState) -> float | None:
    """When the runner must look at the run again without anything happening (None: only an event
    or a settled job moves it)."""
    if state.terminal or state.pending is not None:
        return None
    if state.phase == "wait":
        trig = script.stages[state.stage].trigger
        if trig.type == "time":
            return state.since + trig.delay_seconds
        if trig.type in ("message", "keyword") and trig.timeout_seconds is not None:
            return state.since + trig.timeout_seconds
        return None
    if state.phase == "speak":
        stage = script.stages[state.stage]
        if state.line >= len(stage.lines):
            return state.since
        ln = stage.lines[state.line]
        return (
            state.since
            + ln.delay_seconds
            + jitter(state.run_id, state.stage, state.line, state.attempt, ln.jitter_seconds)
        )
    return None


# --- transitions -------------------------------------------------------------------------------------


def begin(run_id: str, at: float) -> RunState:
    """A new run, waiting for its first stage's trigger since `at` (its start time)."""
    return RunState(run_id=run_id, since=at)


def _end(state: RunState, status: Status, outcome: str, now: float, error: str | None = None) -> Effects:
    state.status, state.phase, state.outcome = status, "end", outcome
    state.error = error[:500] if error else None
    state.finished_at = now
    return Effects(cancel=True, changed=True)


def _natural_outcome(state: RunState) -> str:
    if state.success:
        return "converted"
    return "replied" if state.replies > 0 else "no_response"


def _start_stage(state: RunState, stage: int, at: float) -> None:
    state.stage, state.phase, state.line, state.attempt, state.since = stage, "speak", 0, 0, at


def step(script: ScriptSpec, state: RunState, now: float, settled: Settled | None = None) -> Effects:
    """The runner's round for one run: the pending line's outcome (when it settled), a trigger or a
    timeout that came due, the next line when it is due."""
    fx = Effects()
    if state.terminal:
        return fx
    if state.pending is not None:
        if settled is None:
            return fx
        fx.changed = True
        pending, state.pending = state.pending, None
        if settled.sent:
            state.sent += 1
            state.line, state.attempt, state.since = pending.line + 1, 0, settled.at
        else:
            out = _failed_line(script, state, pending.line, settled.reason or "not sent", now, settled.at)
            if out is not None:
                return out
    for _ in range(len(script.stages) + 2):  # stages that start at once chain in one round
        if state.phase == "wait":
            trig = script.stages[state.stage].trigger
            if trig.type == "time":
                if now < state.since + trig.delay_seconds:
                    return fx
                _start_stage(state, state.stage, state.since + trig.delay_seconds)
                fx.changed = fx.stage_started = True
            elif trig.type in ("message", "keyword"):
                if trig.timeout_seconds is None or now < state.since + trig.timeout_seconds:
                    return fx
                if trig.on_timeout == "stop":
                    out = _end(state, "completed", _natural_outcome(state), now)
                    out.changed = True
                    return out
                _start_stage(state, state.stage, state.since + trig.timeout_seconds)
                fx.changed = fx.stage_started = True
            else:
                return fx
        if state.phase == "speak":
            stage = script.stages[state.stage]
            if state.line >= len(stage.lines):
                fx.changed = True
                if state.stage + 1 >= len(script.stages):
                    out = _end(state, "completed", _natural_outcome(state), now)
                    out.stage_started = fx.stage_started
                    return out
                state.stage, state.phase, state.line, state.attempt = state.stage + 1, "wait", 0, 0
                continue
            due = next_check(script, state)
            if due is not None and now < due:
                return fx
            key = line_key(state.run_id, state.stage, state.line, state.attempt)
            state.pending = Pending(state.stage, state.line, state.attempt, key)
            fx.changed = True
            fx.queue = LineOrder(state.stage, state.line, state.attempt, key, stage.lines[state.line])
            return fx
        return fx
    return fx


def _failed_line(
    script: ScriptSpec, state: RunState, line: int, reason: str, now: float, at: float
) -> Effects | None:
    """A line that was not sent: the stage's failure action. Effects when the run ends, else None
    (the state is moved on: the next line, or the same line again)."""
    stage: ScriptStage = script.stages[state.stage]
    where = f"stage {state.stage + 1} line {line + 1}: {reason}"
    if stage.on_failure == "stop":
        return _end(state, "failed", "failed", now, where)
    if stage.on_failure == "retry":
        if state.attempt >= MAX_RETRIES:
            return _end(state, "failed", "failed", now, f"{where} (after {MAX_RETRIES} retries)")
        state.line, state.attempt, state.since = line, state.attempt + 1, at
        return None
    state.line, state.attempt, state.since = line + 1, 0, at  # skip
    state.error = where[:500]
    return None


def on_target_message(
    script: ScriptSpec, state: RunState, message_id: int, text: str | None, now: float
) -> Effects:
    """The target wrote in the run's chat. Counted once per message; may meet the success
    condition, take a branch or start the stage that waits for it."""
    fx = Effects()
    if state.terminal or message_id in state.seen:
        return fx
    state.seen = [*state.seen, message_id][-SEEN_MESSAGES:]
    state.replies += 1
    state.last_reply_at = now
    fx.changed = True
    cond = script.success
    if cond is not None and not state.success:
        hit = bool(cond.keywords) and matches(text, cond.keywords) is not None
        if hit or (cond.min_replies is not None and state.replies >= cond.min_replies):
            state.success = True
            if cond.end_run:
                return _end(state, "completed", "converted", now)
    if state.phase != "wait":
        return fx  # mid-stage: counted; the lines play on
    if state.stage > 0:
        for branch in script.stages[state.stage - 1].branches:
            if matches(text, branch.keywords) is not None:
                _start_stage(state, branch.goto_stage, now)
                fx.stage_started = True
                return fx
    trig = script.stages[state.stage].trigger
    if trig.type == "message" or (trig.type == "keyword" and matches(text, trig.keywords) is not None):
        _start_stage(state, state.stage, now)
        fx.stage_started = True
    return fx


def manual(script: ScriptSpec, state: RunState, now: float) -> Effects:
    """An operator starts the `manual` stage the run waits for; nothing when it waits for none."""
    if state.terminal or waiting_for(script, state) != "manual":
        return Effects()
    _start_stage(state, state.stage, now)
    return Effects(changed=True, stage_started=True)


def stop(state: RunState, now: float, outcome: str = "stopped", reason: str | None = None) -> Effects:
    """End the run now (an operator, a stop word, a blacklisted or opted-out target)."""
    if state.terminal:
        return Effects()
    return _end(state, "stopped", outcome, now, reason)


def fail(state: RunState, now: float, error: str) -> Effects:
    if state.terminal:
        return Effects()
    return _end(state, "failed", "failed", now, error)


def slots_of(script: ScriptSpec) -> Sequence[str]:
    return [r.key for r in script.roles]
