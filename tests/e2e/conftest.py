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
  wait between two messages to one chat).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_stack import Stack
from tgm_testing.gateway import GatewayClient

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
