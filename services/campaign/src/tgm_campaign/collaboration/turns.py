"""A swarm's turn-taking, pure: given the swarm's rules, its participants, its recent state and one
group message, what to do with the message (answer it with which account, or why not), and the
state after that decision. No I/O: `swarm.py` reads the state, calls `decide`, and writes `apply`'s
result back with a compare-and-set on the swarm's revision (so two replicas never both spend the
same turn).

The checks, in order (the first that refuses is the outcome; `SwarmOutcome` in the contract):

1. Who wrote it: `own_message` (an account's own message: `isOutgoing`), `role_account` (one of
   the swarm's accounts), `fleet_account` (any other fleet account), `anonymous` (no sender: a
   channel post). None of these is the group's traffic: they count nowhere but in the reasons.
2. `no_text`: a member's message without text (a sticker, a photo without caption). It is traffic.
3. `inactive_hours`: outside `activeHours` (in its timezone; when it has none, the operator's
   `general.timezone` as automation's time windows read it, which the caller passes in).
4. `no_trigger`: none of the declared triggers fits (any one suffices): a keyword of the bound
   sets (found by the caller), a question (`?`, or a question word first), a mention (the
   message mentions a role's `@username`, or the listener that saw it was mentioned and is a role
   account), or `everyNMessages` members' messages since the swarm last spoke. A swarm that
   declares no trigger at all answers any message (subject to the rest).
5. `probability`: the message's own draw (repeatable: seeded by swarm and message) is not under
   `replyProbability`. A mention is exempt (someone talked to a role).
6. Group pacing: `group_interval` (less than `minIntervalSeconds` since the swarm last spoke) and
   `hourly_cap` (`maxMessagesPerHour` answers in the last hour).
7. `share_cap`: answering would make the swarm's answers more than `maxTrafficShare` of the last
   `trafficWindow` members' messages (this one included; the denominator is the window size, so a
   fresh swarm is not allowed to answer the first message of an otherwise quiet group twice over).
8. The account (rotation): among the role accounts that are usable (healthy members of the chat,
   when tg-session can say) and whose own `accountMinIntervalSeconds` (default the group interval)
   has passed: the mentioned one if any, else the one that spoke least recently (never first, ties
   in `roleIds` order). None left: `no_account`.

Only step 8's winner is `answered`; whether the AI and the queue then make a message of it is the
caller's business (outcomes `ai_failed`, `ai_handoff`, `refused` replace it then; the turn stays
spent, so a failing AI makes the swarm quieter, never louder).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..automation.engine import in_window, zone

HOUR = 3600.0
#: Decisions kept on the swarm (status, idempotence of a redelivered message, the traffic window).
RECENT = 200

QUESTION_WORDS = frozenset(
    [
        "what",
        "how",
        "why",
        "when",
        "where",
        "who",
        "whom",
        "whose",
        "which",
        "can",
        "could",
        "would",
        "should",
        "is",
        "are",
        "am",
        "do",
        "does",
        "did",
        "will",
        "any",
        "anyone",
        "anybody",
        "has",
        "have",
        "was",
        "were",
        "may",
        "might",
        "shall",
    ]
)
#: Chinese question particles and words (anywhere in the text).
CJK_QUESTION = re.compile(r"[吗嗎呢么麼]|什么|什麼|怎么|怎麼|为什么|為什麼|多少|哪|几|幾|是否|能否|可以吗")
_WORD = re.compile(r"[\w']+", re.UNICODE)
_MENTION = re.compile(r"@([A-Za-z0-9_]{3,32})")


@dataclass(frozen=True)
class Participant:
    role_id: str
    account_id: str
    telegram_id: int | None = None
    username: str | None = None


@dataclass(frozen=True)
class Rules:
    keyword_sets: bool = False  # the swarm has keyword sets (the caller matched them)
    questions: bool = True
    mentions: bool = True
    every_n: int | None = None
    probability: float = 0.3
    min_interval: float = 120.0
    per_hour: int = 12
    share: float = 0.3
    window: int = 20
    account_interval: float | None = None
    active_hours: tuple[str, str, str | None] | None = None  # start, end, timezone
    default_timezone: str = "UTC"  # general.timezone: activeHours without a timezone

    @classmethod
    def of(cls, spec: Mapping[str, Any], default_timezone: str = "UTC") -> Rules:
        """From a stored `SwarmSpec` (snake_case, `model_dump()`); `default_timezone` is the
        operator's `general.timezone`."""
        triggers = spec.get("triggers") or {}
        hours = spec.get("active_hours")
        interval = spec.get("account_min_interval_seconds")
        return cls(
            keyword_sets=bool(triggers.get("keyword_set_ids")),
            questions=bool(triggers.get("questions", True)),
            mentions=bool(triggers.get("mentions", True)),
            every_n=triggers.get("every_n_messages"),
            probability=float(spec.get("reply_probability", 0.3)),
            min_interval=float(spec.get("min_interval_seconds", 120)),
            per_hour=int(spec.get("max_messages_per_hour", 12)),
            share=float(spec.get("max_traffic_share", 0.3)),
            window=int(spec.get("traffic_window", 20)),
            account_interval=float(interval) if interval is not None else None,
            active_hours=(hours["start"], hours["end"], hours.get("timezone")) if hours else None,
            default_timezone=default_timezone,
        )

    @property
    def any_trigger(self) -> bool:
        return self.keyword_sets or self.questions or self.mentions or self.every_n is not None


@dataclass(frozen=True)
class Message:
    message_id: int
    sender_id: int | None
    text: str
    at: float
    listener: str  # the account whose copy of the message this is
    is_outgoing: bool = False
    mentioned: bool = False  # the listener account was mentioned or replied to
    keyword: str | None = None  # a keyword of the swarm's sets found in it (by the caller)
    has_media: bool = False


@dataclass(frozen=True)
class Entry:
    """One decided message, as kept in the swarm's `recent` list."""

    message_id: int
    outcome: str
    at: float
    member: bool  # a member's message: the group's traffic
    account_id: str | None = None
    sender_id: int | None = None
    trigger: str | None = None
    preview: str | None = None
    ordinal: int = 0  # an answer's number (0 for the swarm's first)

    def doc(self) -> dict[str, Any]:
        return {
            "n": self.ordinal,
            "m": self.message_id,
            "o": self.outcome,
            "at": self.at,
            "mb": self.member,
            "a": self.account_id,
            "u": self.sender_id,
            "t": self.trigger,
            "p": self.preview,
        }

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Entry:
        return cls(
            message_id=int(doc["m"]),
            outcome=str(doc["o"]),
            at=float(doc["at"]),
            member=bool(doc.get("mb")),
            account_id=doc.get("a"),
            sender_id=doc.get("u"),
            trigger=doc.get("t"),
            preview=doc.get("p"),
            ordinal=int(doc.get("n") or 0),
        )


@dataclass
class State:
    """What the decisions depend on (kept on the swarm document, field `turns`)."""

    last_answer_at: float | None = None
    answers: list[float] = field(default_factory=list)  # answer times of the last hour (or more)
    account_last: dict[str, float] = field(default_factory=dict)
    since_answer: int = 0  # members' messages since the swarm last spoke
    answered_total: int = 0  # answers decided so far
    recent: list[Entry] = field(default_factory=list)  # oldest first, at most RECENT

    @classmethod
    def of(cls, doc: Mapping[str, Any] | None) -> State:
        doc = doc or {}
        return cls(
            last_answer_at=doc.get("last_answer_at"),
            answers=[float(a) for a in doc.get("answers") or []],
            account_last={str(k): float(v) for k, v in (doc.get("account_last") or {}).items()},
            since_answer=int(doc.get("since_answer") or 0),
            answered_total=int(doc.get("answered_total") or 0),
            recent=[Entry.of(e) for e in doc.get("recent") or []],
        )

    def doc(self) -> dict[str, Any]:
        return {
            "last_answer_at": self.last_answer_at,
            "answers": list(self.answers),
            "account_last": dict(self.account_last),
            "since_answer": self.since_answer,
            "answered_total": self.answered_total,
            "recent": [e.doc() for e in self.recent],
        }

    def find(self, message_id: int) -> Entry | None:
        for e in reversed(self.recent):
            if e.message_id == message_id:
                return e
        return None


@dataclass(frozen=True)
class Decision:
    outcome: str
    member: bool
    account_id: str | None = None
    trigger: str | None = None
    detail: str | None = None

    @property
    def answer(self) -> bool:
        return self.outcome == "answered"


def draw(swarm_id: str, message_id: int) -> float:
    """The message's repeatable draw in [0, 1) (a redelivered message draws the same)."""
    seed = int.from_bytes(hashlib.sha256(f"{swarm_id}|{message_id}".encode()).digest()[:8], "big")
    return random.Random(seed).random()


def is_question(text: str) -> bool:
    if "?" in text or "？" in text:
        return True
    if CJK_QUESTION.search(text):
        return True
    words = _WORD.findall(text.lower())
    return bool(words) and words[0] in QUESTION_WORDS


def mentioned_accounts(text: str, participants: Sequence[Participant]) -> list[str]:
    names = {m.lower() for m in _MENTION.findall(text)}
    return [p.account_id for p in participants if p.username and p.username.lower().lstrip("@") in names]


def _trigger(rules: Rules, msg: Message, mentioned: Sequence[str], state: State) -> str | None:
    if not rules.any_trigger:
        return "any"
    if rules.mentions and mentioned:
        return "mention"
    if rules.keyword_sets and msg.keyword:
        return "keyword"
    if rules.questions and is_question(msg.text):
        return "question"
    if rules.every_n is not None and state.since_answer + 1 >= rules.every_n:
        return "every_n"
    return None


def decide(
    rules: Rules,
    participants: Sequence[Participant],
    fleet_ids: Iterable[int],
    state: State,
    msg: Message,
    chance: float,
    usable: set[str] | None,
) -> Decision:
    """What to do with `msg` (see the module docstring). `chance` is the message's draw;
    `usable` the role accounts that can send now (None: unknown, every one is tried)."""
    own = {p.telegram_id: p for p in participants if p.telegram_id is not None}
    if msg.is_outgoing:
        return Decision("own_message", False)
    if msg.sender_id is None:
        return Decision("anonymous", False)
    if msg.sender_id in own:
        return Decision("role_account", False, detail=f"written by {own[msg.sender_id].account_id}")
    if msg.sender_id in set(fleet_ids):
        return Decision("fleet_account", False)
    if not msg.text.strip():
        return Decision("no_text", True)
    if rules.active_hours is not None:
        start, end, tz_name = rules.active_hours
        tz, _ = zone(tz_name, rules.default_timezone)
        local = datetime.fromtimestamp(msg.at, tz)
        if not in_window(local, start, end):
            return Decision("inactive_hours", True, detail=f"outside {start}-{end} ({tz})")
    mentioned = mentioned_accounts(msg.text, participants)
    if msg.mentioned and any(p.account_id == msg.listener for p in participants):
        mentioned = [msg.listener, *[a for a in mentioned if a != msg.listener]]
    trigger = _trigger(rules, msg, mentioned, state)
    if trigger is None:
        return Decision("no_trigger", True)
    if trigger != "mention" and chance >= rules.probability:
        return Decision(
            "probability", True, trigger=trigger, detail=f"draw {chance:.2f} >= {rules.probability}"
        )
    now = msg.at
    if state.last_answer_at is not None and now - state.last_answer_at < rules.min_interval:
        return Decision(
            "group_interval",
            True,
            trigger=trigger,
            detail=f"the swarm spoke {now - state.last_answer_at:.0f} s ago (< {rules.min_interval:.0f} s)",
        )
    last_hour = [a for a in state.answers if now - a < HOUR]
    if len(last_hour) >= rules.per_hour:
        return Decision(
            "hourly_cap", True, trigger=trigger, detail=f"{len(last_hour)} answers in the last hour"
        )
    window = [e for e in state.recent if e.member][-(rules.window - 1) :] if rules.window > 1 else []
    answered = sum(1 for e in window if e.outcome == "answered")
    if (answered + 1) / rules.window > rules.share + 1e-9:
        return Decision(
            "share_cap",
            True,
            trigger=trigger,
            detail=f"{answered} of the last {rules.window} messages answered already",
        )
    gap = rules.account_interval if rules.account_interval is not None else rules.min_interval
    order = {p.account_id: i for i, p in enumerate(participants)}
    candidates = [
        p.account_id
        for p in participants
        if (usable is None or p.account_id in usable)
        and (p.account_id not in state.account_last or now - state.account_last[p.account_id] >= gap)
    ]
    if not candidates:
        return Decision("no_account", True, trigger=trigger, detail="no role account is usable or rested")
    chosen = next((a for a in mentioned if a in candidates), None)
    if chosen is None:
        chosen = min(candidates, key=lambda a: (state.account_last.get(a, -1.0), order[a]))
    return Decision("answered", True, account_id=chosen, trigger=trigger)


def apply(state: State, msg: Message, decision: Decision) -> State:
    """The state after `decision` on `msg` (a new value; `state` is not changed)."""
    entry = Entry(
        message_id=msg.message_id,
        outcome=decision.outcome,
        at=msg.at,
        member=decision.member,
        account_id=decision.account_id,
        sender_id=msg.sender_id,
        trigger=decision.trigger,
        preview=msg.text[:80] or None,
        ordinal=state.answered_total if decision.answer else 0,
    )
    out = State(
        last_answer_at=state.last_answer_at,
        answers=[a for a in state.answers if msg.at - a < HOUR],
        account_last=dict(state.account_last),
        since_answer=state.since_answer,
        answered_total=state.answered_total + (1 if decision.answer else 0),
        recent=[*state.recent, entry][-RECENT:],
    )
    if decision.answer:
        assert decision.account_id is not None
        out.last_answer_at = msg.at
        out.answers.append(msg.at)
        out.account_last[decision.account_id] = msg.at
        out.since_answer = 0
    elif decision.member:
        out.since_answer += 1
    return out
