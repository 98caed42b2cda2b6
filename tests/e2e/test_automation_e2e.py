"""Automation end to end (issue 11): two listener accounts watch one monitored megagroup; users post
matching and non-matching messages in English and Chinese; trigger rules answer by template and by
the local AI provider grounded in the knowledge base; then campaign and tg-session are SIGKILLed in
the middle. The stack runs as processes (nats-server, database, tg-session with the real Telethon,
campaign, ai, gateway), driven only through the gateway's HTTP API and WebSocket, against the
Telegram emulator in this process.

The world: `@autobuyers` ("Buyers Lounge"), created by an owner (its admin), with our two listener
accounts and the users below; `@autoelse`, a group that is not monitored, with one of our accounts.

Rules (all `senderType` auto or listener, private replies, through messaging's paced queue):
- R1 "price" (priority 10): keyword set Price (`price`, `价格`, `多少钱`), only from the monitored group,
  template reply with spintax and `{first_name}`, `delayMin = delayMax = 2 s`, cooldown 1 h,
  **daily limit 2**, adds the lead;
- R2 "shipping" (priority 5): keyword set Shipping (`shipping`, `运费`), AI reply in `full` mode by the
  local provider with two FAQ items loaded (`add-knowledge`), delay 3 s, cooldown 1 h, adds the lead;
- R3 "welcome" (priority 3): keyword set Hello (`hello`, `你好`), `newMemberOnly`, template reply, 1 s.

What is posted, and what must happen (each message reaches campaign twice: both listeners see it):
- alice "price?" -> R1 replies once, after >= 2 s; alice again -> cooldown: nothing;
- bob "价格" -> R1 replies (its 2nd of the day); dave "多少钱" -> daily limit: nothing;
- dave "price" in the unmonitored group -> nothing, and counted nowhere;
- carol (a member for days) "nice weather" / "今天天气很好" -> no keyword: nothing; "hello" -> R3 blocked
  (not a new member);
- mallory (blacklisted) "shipping?" -> matched, but never messaged;
- frank "运费怎么算？" -> R2 replies with the knowledge answer (满 1000 元免运);
- erin joins the group, then "hello everyone" -> R3 welcomes her;
- gina posts while campaign is SIGKILLed; henry while tg-session is SIGKILLed (fetched on reconnect);
  ivan's reply is decided, then campaign is SIGKILLed before its 3 s delay ends -> each gets exactly
  one AI reply after the restarts.

Checked: the emulator's record of private messages to each user (exactly the replies above, each
once, none to carol, dave or mallory, nothing in the groups), every delay respected, one lead per
person with the monitored group as source and the keyword that matched (`get-leads`), rule counters
exact (`get-trigger-rules`), and each message counted once per keyword and group although two
listeners saw it (`get-keyword-sets`, `get-monitored-groups`).

Counting rules the test relies on (the product's, see `automation/service.py`): `triggerCount` counts
firings (a blocked decision — cooldown, daily limit, condition — is not a firing); `successCount`
the firings whose actions all ran (mallory's counts: her reply job is made, then skipped by the
queue as blacklisted); a keyword's `matchCount` and a group's `matchCount` count matched messages.
Decisions are awaited on the `trigger-fired` events (per user, rule and outcome) pushed over the
gateway's WebSocket, so each post is decided before the next.
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_stack import Stack
from tgm_testing.gateway import EventFeed, GatewayClient, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MARK = -1_000_000_000_000  # marked channel ids: MARK - channel.id
USERS = ("alice", "bob", "carol", "dave", "mallory", "frank", "erin", "gina", "henry", "ivan")
R1_DELAY, R2_DELAY, R3_DELAY = 2, 3, 1
SLACK = 15.0  # seconds a reply may take past its rule's delay (the queue's tick, pacing, the AI)
PRICE_REPLY = re.compile(r"^(Hi|Hello) (?P<name>\w+), the price list is on its way \[price\]$")
WELCOME = re.compile(r"^Welcome (?P<name>\w+)! Glad to have you here \[welcome\]$")
KNOWLEDGE = [
    {"type": "faq", "question": "运费怎么算？", "answer": "单笔订单满 1000 元免运，未满收 80 元。"},
    {"type": "faq", "question": "How much is shipping?", "answer": "Shipping is free above 50 USD."},
]


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


@dataclass
class Run:
    stack: Stack
    gw: GatewayClient
    feed: EventFeed
    emulator: EmulatorThread
    agents: list[Any]
    users: dict[str, Any]
    group: Any  # the monitored channel
    other: Any  # the unmonitored one
    ids: dict[str, str] = field(default_factory=dict)  # keyword sets, rules, group, templates
    posted: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # user -> [(text, at)]

    def post(self, who: str, text: str, *, where: Any = None) -> None:
        at = time.time()
        self.emulator.do(self.emulator.world.post, self.users[who], where or self.group, text)
        self.posted.setdefault(who, []).append((text, at))

    def replies(self) -> dict[str, list[tuple[str, float, int]]]:
        """Per user: (text, delivery time, sending account's emulator id) of what our accounts sent."""
        ours = {a.id for a in self.agents}
        by_id = {u.id: name for name, u in self.users.items()}

        def read() -> dict[str, list[tuple[str, float, int]]]:
            out: dict[str, list[tuple[str, float, int]]] = {name: [] for name in self.users}
            for d in self.emulator.world.deliveries:
                if d.from_user_id in ours and d.to_user_id in by_id:
                    out[by_id[d.to_user_id]].append((d.text, d.date, d.from_user_id))
            return out

        return self.emulator.do(read)

    def group_sends(self) -> list[str]:
        ours = {a.id for a in self.agents}
        chats = {self.group.id, self.other.id}
        return self.emulator.do(
            lambda: [
                d.text
                for d in self.emulator.world.deliveries
                if d.from_user_id in ours and d.chat_id in chats
            ]
        )

    def rule(self, key: str) -> dict[str, Any]:
        rules = {r["id"]: r for r in self.gw.ok("get-trigger-rules", {})["items"]}
        return rules[self.ids[key]]

    def matches(self) -> int:
        groups = {g["id"]: g for g in self.gw.ok("get-monitored-groups", {})["items"]}
        count: int = groups[self.ids["group"]]["matchCount"]
        return count

    def wait_matches(self, n: int, what: str) -> None:
        def enough() -> tuple[int, dict[str, int]] | None:
            count = self.matches()
            return None if count < n else (count, {})

        try:
            wait_until(enough, 60, f"{what}: {n} matched messages")
        except Exception as exc:
            sets = self.gw.ok("get-keyword-sets", {})["items"]
            per_keyword = {k["keyword"]: k["matchCount"] for s in sets for k in s["keywords"]}
            names = {u.id: name for name, u in self.users.items()}
            seen = Counter(names.get(d.get("userId"), "?") for d in self.feed.named("keyword-matched"))
            raise AssertionError(
                f"{exc}; group count {self.matches()}, per keyword {per_keyword}, keyword-matched events {seen}"
            ) from None
        assert self.matches() == n, f"{what}: more than {n} matched messages (a duplicate?)"

    def wait_fired(self, key: str, who: str) -> dict[str, Any]:
        """The `trigger-fired` event (outcome fired) of rule `key` for `who`'s message."""
        uid, rid = self.users[who].id, self.ids[key]
        try:
            return self.feed.wait(
                "trigger-fired",
                lambda d: d.get("userId") == uid and d.get("ruleId") == rid and d.get("outcome") == "fired",
                timeout=60,
            )
        except AssertionError:
            seen = [d for d in self.feed.named("keyword-matched") if d.get("userId") == uid]
            decided = [d for d in self.feed.named("trigger-fired") if d.get("userId") == uid]
            raise AssertionError(
                f"{key} never fired for {who}'s message; its keyword-matched events: {seen}; "
                f"its trigger-fired events: {decided}"
            ) from None

    def wait_skip(self, who: str, outcome: str) -> dict[str, Any]:
        uid = self.users[who].id
        return self.feed.wait(
            "trigger-fired", lambda d: d.get("userId") == uid and d.get("outcome") == outcome, timeout=60
        )


def seed(emulator: EmulatorThread) -> dict[str, Any]:
    w = emulator.world
    out: dict[str, Any] = {}

    def build() -> None:
        owner = w.add_user("+15550890000", first_name="Owner", username="auto_owner")
        agents = [
            w.add_user(f"+1555089{i:04d}", first_name=f"Listener{i}", username=f"auto_listener_{i}")
            for i in (1, 2)
        ]
        users = {
            name: w.add_user(f"+1555088{j:04d}", first_name=name.capitalize(), username=f"auto_{name}")
            for j, name in enumerate(USERS)
        }
        group = w.create_channel(owner, "Buyers Lounge", username="autobuyers")
        w.invite_to_channel(owner, group, [*agents, *(u for n, u in users.items() if n != "erin")])
        other = w.create_channel(owner, "Elsewhere", username="autoelse")
        w.invite_to_channel(owner, other, [agents[0], users["dave"]])
        # carol has been a member for three days (the others joined just now, before monitoring)
        group.participants[users["carol"].id].date = int(w.now() - 3 * 86_400)
        out.update(
            agents=agents,
            users=users,
            group=group,
            other=other,
            sessions=[emulator.emu.session_for(a) for a in agents],
        )

    emulator.do(build)
    return out


def onboard(gw: GatewayClient, sessions: list[str], fast_pacing: dict[str, Any]) -> list[str]:
    creds = gw.ok("get-api-credentials")["items"]
    gw.ok("save-api-credential", {"id": creds[0]["id"], "maxAccounts": 100, "test": False})
    ids = [
        gw.ok(
            "add-account",
            {
                "phone": f"+1555089{i:04d}",
                "sessionString": s,
                "role": "listener",
                "dailySendLimit": 200,
                "warmupEnabled": False,
            },
        )["id"]
        for i, s in zip((1, 2), sessions, strict=True)
    ]
    wait_until(
        lambda: all(
            a["connected"] and a["state"] == "active" for a in gw.ok("get-accounts", {"ids": ids})["items"]
        ),
        90,
        "listeners connected",
    )
    gw.ok("save-settings", {"settings": {"pacing": fast_pacing}})
    return ids


def watched_chats(stack: Stack) -> float:
    """tg-session's `tgm_session_watched_chats` gauge: the monitored chats it publishes messages of."""
    url = stack.child("tg-session").ready_url.replace("/readyz", "/metrics")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    with opener.open(url, timeout=2.0) as resp:
        text = resp.read().decode()
    found = re.search(r"^tgm_session_watched_chats (\S+)$", text, re.M)
    return float(found[1]) if found else 0.0


def wait_watched(stack: Stack, n: int) -> None:
    """Wait until tg-session follows the monitored chats campaign wrote.

    Decision (the author's finding 6: alice's first message, posted right after one-click-start, was
    never matched, before tg-session's catch-up existed): start-monitoring / one-click-start answer
    once campaign has WRITTEN the watched chats to the `tgm_monitored_chats` KV bucket; tg-session
    follows that key asynchronously (a KV watch, milliseconds; a stale watch is noticed by its 5 s
    resync) and drops a live group message of a chat it does not watch yet. The catch-up sweep
    (`fleet/catchup.py`, ~1 s after live traffic) fetches such a message again once the chat is
    watched, so it is matched late rather than lost; the test does not lean on that: it waits for
    tg-session's side, so each decision follows its post as the delays measured below assume."""
    wait_until(lambda: watched_chats(stack) >= n or None, 30, f"tg-session watches {n} chat(s)", interval=0.1)


def configure(run: Run) -> None:
    gw, ids = run.gw, run.ids
    price = gw.ok("add-keyword-set", {"name": "Price", "keywords": ["price", "价格", "多少钱"]})
    shipping = gw.ok("add-keyword-set", {"name": "Shipping", "keywords": ["shipping", "运费"]})
    hello = gw.ok("add-keyword-set", {"name": "Hello", "keywords": ["hello", "你好"]})
    group = gw.ok(
        "add-group", {"group": "@autobuyers", "keywordSetIds": [price["id"], shipping["id"], hello["id"]]}
    )
    t_price = gw.ok(
        "add-template",
        {"name": "price reply", "content": "{Hi|Hello} {first_name}, the price list is on its way [price]"},
    )["template"]
    t_welcome = gw.ok(
        "add-template",
        {"name": "welcome", "content": "Welcome {first_name}! Glad to have you here [welcome]"},
    )["template"]
    gw.ok("add-knowledge", {"items": KNOWLEDGE})
    common = {"cooldownSeconds": 3600, "conditions": {"excludeAdmin": True}}
    r1 = gw.ok(
        "save-trigger-rule",
        {
            **common,
            "name": "price",
            "priority": 10,
            "sourceType": "specific",
            "sourceGroupIds": [group["id"]],
            "keywordSetIds": [price["id"]],
            "actions": [{"type": "reply_template", "templateId": t_price["id"]}, {"type": "add_lead"}],
            "senderType": "auto",
            "delayMin": R1_DELAY,
            "delayMax": R1_DELAY,
            "dailyLimit": 2,
        },
    )
    r2 = gw.ok(
        "save-trigger-rule",
        {
            **common,
            "name": "shipping",
            "priority": 5,
            "keywordSetIds": [shipping["id"]],
            "actions": [{"type": "ai_reply", "mode": "full"}, {"type": "add_lead"}],
            "senderType": "listener",
            "delayMin": R2_DELAY,
            "delayMax": R2_DELAY,
            "dailyLimit": 20,
        },
    )
    r3 = gw.ok(
        "save-trigger-rule",
        {
            **common,
            "name": "welcome",
            "priority": 3,
            "keywordSetIds": [hello["id"]],
            "conditions": {"newMemberOnly": True, "excludeAdmin": True},
            "actions": [{"type": "reply_template", "templateId": t_welcome["id"]}],
            "delayMin": R3_DELAY,
            "delayMax": R3_DELAY,
            "dailyLimit": 10,
        },
    )
    ids.update(
        price=price["id"], shipping=shipping["id"], hello=hello["id"], group=group["id"], r1=r1["id"], r2=r2["id"],
        r3=r3["id"],
    )  # fmt: skip
    gw.ok("blacklist-user", {"userId": run.users["mallory"].id, "reason": "e2e"})
    started = gw.ok("one-click-start", {"aiAutoReply": True})
    assert started["monitoring"]["active"] is True, started
    wait_watched(run.stack, 1)
    groups = {g["id"]: g for g in gw.ok("get-monitored-groups", {})["items"]}
    assert groups[group["id"]]["chatId"] == MARK - run.group.id and groups[group["id"]]["status"] == "ok", (
        groups
    )


@pytest.fixture
def run(
    emulator: EmulatorThread, start_stack: Callable[..., Stack], fast_pacing: dict[str, Any]
) -> Iterator[Run]:
    world = seed(emulator)
    stack = start_stack(services=("tg-session", "campaign", "ai"), emulator=emulator)
    with GatewayClient(stack, timeout=150) as gw, gw.events(["tgm.campaign.evt.>"]) as feed:
        onboard(gw, world["sessions"], fast_pacing)
        r = Run(stack, gw, feed, emulator, world["agents"], world["users"], world["group"], world["other"])
        configure(r)
        yield r


def restart_after_kill(stack: Stack, service: str) -> None:
    pid = stack.kill(service)
    say(f"SIGKILLed {service} (pid {pid})")
    stack.restart(service)
    say(f"{service} restarted")


@pytest.mark.timeout(300)
def test_rules_reply_once_within_limits_across_sigkills(run: Run) -> None:
    t0 = time.monotonic()
    # --- R1: a reply, then cooldown, then the daily limit --------------------------------------
    run.post("dave", "what's the price here?", where=run.other)  # not a monitored group
    run.post("alice", "What is the price of the Pro plan?")
    run.wait_fired("r1", "alice")
    run.wait_matches(1, "alice")
    run.post("alice", "any news on the price?")
    run.wait_skip("alice", "cooldown")
    run.post("bob", "请问价格是多少？")
    run.wait_fired("r1", "bob")
    run.post("dave", "这个多少钱")
    run.wait_skip("dave", "daily_limit")
    run.wait_matches(4, "price messages")
    # --- no keyword; an old member says hello; the blacklisted user matches; an AI reply ------
    run.post("carol", "nice weather today")
    run.post("carol", "今天天气很好")
    run.post("carol", "hello there")
    run.wait_skip("carol", "condition_failed")
    run.post("mallory", "shipping to Berlin?")
    run.wait_fired("r2", "mallory")
    run.post("frank", "运费怎么算？")
    run.wait_fired("r2", "frank")
    # --- a new member joins, then says hello ---------------------------------------------------
    run.emulator.do(run.emulator.world.join_channel, run.users["erin"], run.group)
    run.post("erin", "hello everyone")
    run.wait_fired("r3", "erin")
    run.wait_matches(8, "before the kills")
    say(f"phase 1 decided in {time.monotonic() - t0:.1f}s")
    # phase 1's replies go out before anything is killed (their delays are measured, not a restart's)
    first = ("alice", "bob", "frank", "erin")
    try:
        wait_until(lambda: all(run.replies()[n] for n in first), 60, "phase 1 replies delivered")
    except Exception as exc:
        jobs = run.gw.pages("get-queue-status", {"includeJobs": True, "limit": 500}, key="jobs")
        view = [(j["peer"], j["state"], j.get("reason")) for j in jobs]
        raise AssertionError(f"{exc}; delivered {run.replies()}; jobs {view}") from None
    say(f"phase 1 replied in {time.monotonic() - t0:.1f}s")

    # --- campaign down: gina's message waits in the stream ------------------------------------
    run.stack.kill("campaign")
    run.post("gina", "how much is shipping to Paris?")
    run.stack.restart("campaign")
    run.wait_fired("r2", "gina")
    # --- tg-session down: henry's message is fetched when it reconnects ------------------------
    run.stack.kill("tg-session")
    run.post("henry", "shipping to Rome, how much?")
    run.stack.restart("tg-session")
    run.wait_fired("r2", "henry")
    # --- campaign killed between ivan's decision and his delayed reply --------------------------
    run.post("ivan", "is shipping free?")
    run.wait_fired("r2", "ivan")
    restart_after_kill(run.stack, "campaign")
    run.wait_matches(11, "after the kills")

    # --- the emulator's record: exactly these replies, each once -------------------------------
    expected = {"alice": 1, "bob": 1, "frank": 1, "erin": 1, "gina": 1, "henry": 1, "ivan": 1}

    def all_delivered() -> dict[str, list[tuple[str, float, int]]] | None:
        got = run.replies()
        return got if all(len(got[n]) >= k for n, k in expected.items()) else None

    try:
        got = wait_until(all_delivered, 90, "every expected reply delivered", interval=1.0)
    except Exception as exc:
        jobs = run.gw.pages("get-queue-status", {"includeJobs": True, "limit": 500}, key="jobs")
        view = [(j["peer"], j["state"], j.get("reason")) for j in jobs]
        raise AssertionError(f"{exc}; delivered {run.replies()}; jobs {view}") from None
    counts = {name: len(items) for name, items in got.items()}
    assert counts == {name: expected.get(name, 0) for name in USERS}, counts
    assert run.group_sends() == [], "a reply went to a group"
    for name in ("alice", "bob"):
        m = PRICE_REPLY.match(got[name][0][0])
        assert m and m["name"] == name.capitalize(), got[name]
    assert WELCOME.match(got["erin"][0][0]) and "Erin" in got["erin"][0][0], got["erin"]
    assert "1000" in got["frank"][0][0], got["frank"]
    for name in ("gina", "henry", "ivan"):
        assert "50 USD" in got[name][0][0], got[name]

    # --- each delay respected: from the post that fired to its reply ---------------------------
    # (Telegram dates a message in whole seconds: a delay counted from the message's own date may
    # end up to a second earlier than one counted from our float clock; never before date + delay.)
    # Ivan's reply waited out a SIGKILL of campaign too: the restarted scheduler takes the queue over
    # once the dead one's lease expires, so his bound is wider.
    delays = {"alice": R1_DELAY, "bob": R1_DELAY, "frank": R2_DELAY, "erin": R3_DELAY, "ivan": R2_DELAY}
    for name, delay in delays.items():
        posted_at = run.posted[name][0][1]
        replied_at = got[name][0][1]
        waited = round(replied_at - posted_at, 2)
        assert replied_at >= int(posted_at) + delay - 0.05, (name, delay, waited)
        assert waited <= delay + (SLACK if name != "ivan" else SLACK + 45), (name, delay, waited)
    # senderType listener: the account that saw the message (both saw it: one of the two)
    assert {got[n][0][2] for n in ("frank", "gina", "henry", "ivan")} <= {a.id for a in run.agents}

    # --- one lead per person, from the monitored group, with the keyword that matched ----------
    leads = run.gw.pages("get-leads", {"limit": 500})
    by_user = Counter(lead["userId"] for lead in leads)
    assert all(n == 1 for n in by_user.values()), by_user
    keyword_of = {"alice": "price", "bob": "价格", "frank": "运费", "gina": "shipping", "henry": "shipping",
                  "ivan": "shipping"}  # fmt: skip
    view = {lead["userId"]: lead for lead in leads}
    for name, keyword in keyword_of.items():
        lead = view.get(run.users[name].id)
        assert lead is not None, f"no lead for {name}"
        assert lead["sourceGroupId"] == run.ids["group"] and lead["sourceChatId"] == MARK - run.group.id, lead
        assert lead["triggeredKeyword"] == keyword, (name, lead)
    for name in ("carol", "dave", "erin"):  # no match, blocked, or a rule without add_lead
        assert run.users[name].id not in view, (name, view.get(run.users[name].id))
    mallory = view.get(run.users["mallory"].id)
    assert mallory is not None and mallory["blacklisted"] is True, mallory

    # --- rule counters exact --------------------------------------------------------------------
    r1, r2, r3 = run.rule("r1"), run.rule("r2"), run.rule("r3")
    assert (r1["triggerCount"], r1["successCount"]) == (2, 2), r1
    assert (r3["triggerCount"], r3["successCount"]) == (1, 1), r3
    # mallory's match fires R2 too: her lead is captured (blacklisted) and the reply job is skipped
    # by the queue's compliance — a firing whose actions all ran, so a success (service.py)
    assert (r2["triggerCount"], r2["successCount"]) == (5, 5), r2
    assert r1["lastTriggeredAt"] and r2["lastTriggeredAt"] and r3["lastTriggeredAt"]

    # --- each message processed once although both listeners saw it ----------------------------
    sets = {s["id"]: s for s in run.gw.ok("get-keyword-sets", {})["items"]}
    per_keyword = {k["keyword"]: k["matchCount"] for s in sets.values() for k in s["keywords"]}
    assert per_keyword == {
        "price": 2,
        "价格": 1,
        "多少钱": 1,
        "shipping": 4,
        "运费": 1,
        "hello": 2,
        "你好": 0,
    }, per_keyword
    assert run.matches() == 11
    assert sets[run.ids["price"]]["totalMatches"] == 4 and sets[run.ids["shipping"]]["totalMatches"] == 5
    # --- the queue: every reply job sent once, mallory's (if any) skipped as blacklisted -------
    jobs = run.gw.pages("get-queue-status", {"includeJobs": True, "limit": 500}, key="jobs")
    states = Counter(j["state"] for j in jobs)
    assert states == Counter({"sent": 7, "skipped": 1}), states
    assert [j["reason"] for j in jobs if j["state"] == "skipped"] == ["blacklisted"], jobs
    say(f"done in {time.monotonic() - t0:.1f}s: {counts}")
