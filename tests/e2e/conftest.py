"""The pieces every e2e module shares: the stack as processes, the Telegram emulator, fast pacing.

The tests talk to the system only through its gateway (`tgm_testing.gateway.GatewayClient`, and
`wait_until` to poll it) and to the emulator only through `EmulatorThread.do`. Fixtures here start
what a test needs and stop it afterwards:

- `stack`: the whole system (nats-server, the database server, the five services, the gateway) for
  a module, with `gw`, a client of its gateway for one test;
- `start_stack(services=..., emulator=..., env=...)`: a stack for one test, started when the test
  has seeded what must exist first, stopped at its end; `start_module_stack` the same for a module;
- `emulator`: the Telegram emulator on a thread, a fresh world for each test (`module_emulator`:
  one for a module, with its developer site);
- `fast_pacing`: the `pacing` settings that let sends go out at once (no jitter, no quiet hours, no
  wait between two messages to one chat);
- `seed_fleet` / `connect_fleet`: fleet accounts and people in the emulator's world (a `Fleet`),
  then the accounts added to the stack by their session strings and connected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_stack import Stack
from tgm_testing.gateway import GatewayClient, wait_until

#: Immediate sends: no jitter, no quiet hours, no minimum interval between messages to one chat.
FAST_PACING: dict[str, Any] = {
    "jitterMinSeconds": 0.0,
    "jitterMaxSeconds": 0.0,
    "quietHoursStart": None,
    "quietHoursEnd": None,
    "perChatMinIntervalSeconds": 0.0,
}


class _Stacks:
    """Starts stacks in folders of their own under `root`; `stop_all` stops every one it started."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Stack] = []

    def __call__(
        self,
        *,
        services: tuple[str, ...] | None = None,
        emulator: EmulatorThread | None = None,
        env: Mapping[str, str] | None = None,
        replicas: Mapping[str, int] | None = None,
    ) -> Stack:
        """A started stack of `services` (default: all five), pointed at `emulator` when given,
        with `env` added to the environment of every child."""
        home = self.root / f"stack-{len(self.started)}"
        home.mkdir(parents=True, exist_ok=True)
        extra = emulator.env(home, **(env or {})) if emulator is not None else dict(env or {})
        options: dict[str, Any] = {"gateway_port": 0, "extra_env": extra}
        if services is not None:
            options["services"] = services
        if replicas is not None:
            options["replicas"] = dict(replicas)
        stack = Stack(home / "data", **options)
        self.started.append(stack)
        stack.start()
        return stack

    def stop_all(self) -> None:
        for stack in reversed(self.started):
            stack.stop()


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    stacks = _Stacks(tmp_path)
    try:
        yield stacks
    finally:
        stacks.stop_all()


@pytest.fixture(scope="module")
def start_module_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Stack]]:
    stacks = _Stacks(tmp_path_factory.mktemp("e2e"))
    try:
        yield stacks
    finally:
        stacks.stop_all()


@pytest.fixture(scope="module")
def stack(start_module_stack: Callable[..., Stack]) -> Stack:
    """The whole system, for every test of a module."""
    return start_module_stack()


@pytest.fixture
def gw(stack: Stack) -> Iterator[GatewayClient]:
    """A client of the gateway of `stack` (a fresh record of the commands it called)."""
    with GatewayClient(stack) as client:
        yield client


def _running_emulator(*, devsite: bool) -> Iterator[EmulatorThread]:
    emu = EmulatorThread(devsite=devsite).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    """A fresh emulator for one test. Ask for it before `start_stack`: the stack stops first."""
    yield from _running_emulator(devsite=False)


@pytest.fixture(scope="module")
def module_emulator() -> Iterator[EmulatorThread]:
    """One emulator, with its developer site (my.telegram.org), for every test of a module."""
    yield from _running_emulator(devsite=True)


@pytest.fixture(scope="session")
def fast_pacing() -> dict[str, Any]:
    """`FAST_PACING`, for tests and for fixtures of any scope (`save-settings` with it)."""
    return dict(FAST_PACING)


@dataclass
class Fleet:
    """What `seed_fleet` put in the emulator's world: the fleet's Telegram users (`accounts`, each with
    a logged-in `sessions` string and its `phones`) and the people around them (`users`)."""

    accounts: list[Any]
    users: list[Any]
    sessions: list[str]
    phones: list[str]
    #: anything more `extra` built in the same step (channels, more people), by name
    more: dict[str, Any] = field(default_factory=dict)

    @property
    def account_ids(self) -> frozenset[int]:
        """The fleet's Telegram user ids."""
        return frozenset(a.id for a in self.accounts)


def _seed_fleet(
    emulator: EmulatorThread,
    prefix: str,
    *,
    phone: str,
    accounts: int = 2,
    users: int = 4,
    agent_name: str = "Agent",
    user_name: str = "User",
    extra: Callable[[Fleet], None] | None = None,
) -> Fleet:
    """Seed the emulator's world in one step on its thread: `accounts` fleet users (phone
    `{phone}0NNNN`, first name `{agent_name}N`, username `{prefix}_agent_N`) with a session each, and
    `users` people (`{phone}1NNNN`, `{user_name}N`, `{prefix}_user_N`); then `extra(fleet)`, which may
    add more to the world and to `fleet.more`."""
    w = emulator.world
    out: list[Fleet] = []

    def build() -> None:
        agents = [
            w.add_user(f"{phone}0{i:04d}", first_name=f"{agent_name}{i}", username=f"{prefix}_agent_{i}")
            for i in range(accounts)
        ]
        people = [
            w.add_user(f"{phone}1{j:04d}", first_name=f"{user_name}{j}", username=f"{prefix}_user_{j}")
            for j in range(users)
        ]
        fleet = Fleet(
            accounts=agents,
            users=people,
            sessions=[emulator.emu.session_for(a) for a in agents],
            phones=[f"{phone}0{i:04d}" for i in range(accounts)],
        )
        if extra is not None:
            extra(fleet)
        out.append(fleet)

    emulator.do(build)
    return out[0]


def _connect_fleet(
    gw: GatewayClient,
    fleet: Fleet,
    per_account: Callable[[int], Mapping[str, Any]] | None = None,
    *,
    timeout: float = 90,
    **fields: Any,
) -> list[str]:
    """Add the fleet's accounts by their session strings (the first API credential allowed 100
    accounts), with `fields` (and `per_account(i)`) in each `add-account`; wait until all are
    connected and active. Their account ids, in order."""
    creds = gw.ok("get-api-credentials")["items"]
    gw.ok("save-api-credential", {"id": creds[0]["id"], "maxAccounts": 100, "test": False})
    ids = [
        gw.ok(
            "add-account",
            {"phone": p, "sessionString": s, **fields, **(per_account(i) if per_account else {})},
        )["id"]
        for i, (p, s) in enumerate(zip(fleet.phones, fleet.sessions, strict=True))
    ]
    wait_until(
        lambda: all(
            a["connected"] and a["state"] == "active" for a in gw.ok("get-accounts", {"ids": ids})["items"]
        ),
        timeout,
        "accounts connected",
    )
    return ids


@pytest.fixture(scope="session")
def seed_fleet() -> Callable[..., Fleet]:
    """`_seed_fleet(emulator, prefix, phone=..., ...)`: the fleet and people in the emulator's world."""
    return _seed_fleet


@pytest.fixture(scope="session")
def connect_fleet() -> Callable[..., list[str]]:
    """`_connect_fleet(gw, fleet, ...)`: the fleet's accounts added and connected; their ids."""
    return _connect_fleet
