"""Keeps a running `Stack` running: restarts children that crash, with backoff, and notices when
the gateway has shut the system down on request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tgm_testing.procs import ManagedProcess, ProcessError

from .stack import Stack


@dataclass
class _Watch:
    name: str
    process: ManagedProcess
    is_gateway: bool = False
    backoff: float = 0.0
    restart_at: float | None = None
    #: Exited with status 0 on its own: it chose to stop, so it stays down.
    finished: bool = False
    crashes: int = 0
    #: nats-server or the database: never expected to stop, so any exit is restarted.
    is_infra: bool = False


class Supervisor:
    """Watches the stack's processes (its own nats-server and database server too).

    - a child that exits with a non-zero status (or by a signal) is started again after a backoff
      that doubles from `backoff_initial` up to `backoff_max`, and resets once the child has stayed
      up for `stable_after` seconds;
    - a service that exits with status 0 stopped on purpose and is left alone (nats-server and the
      database are always restarted);
    - the gateway exiting with status 0 means `graceful-shutdown` was asked: `run` returns 0 and the
      caller stops the rest.
    """

    def __init__(
        self,
        stack: Stack,
        *,
        say: Callable[[str], None] = print,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        stable_after: float = 60.0,
        poll_interval: float = 0.2,
    ) -> None:
        self.stack = stack
        self.say = say
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.poll_interval = poll_interval
        self._watches: list[_Watch] = []
        if stack.nats is not None:
            self._watches.append(_Watch("nats-server", stack.nats.process, is_infra=True))
        if stack.mongo is not None:
            self._watches.append(_Watch("secantusd", stack.mongo.process, is_infra=True))
        for child in stack.children.values():
            self._watches.append(_Watch(child.name, child.process, is_gateway=child.is_gateway))

    def step(self, now: float | None = None) -> int | None:
        """One look at every process. Returns 0 once the gateway has exited cleanly, else None."""
        now = time.monotonic() if now is None else now
        for w in self._watches:
            proc = w.process
            if w.finished:
                continue
            if proc.alive:
                if w.backoff and proc.started_at is not None and now - proc.started_at >= self.stable_after:
                    w.backoff = 0.0
                continue
            if w.restart_at is None:
                rc = proc.returncode
                if rc == 0 and not w.is_infra:
                    if w.is_gateway:
                        self.say("gateway stopped (graceful shutdown); stopping everything")
                        return 0
                    self.say(f"{w.name} stopped on its own (status 0); leaving it down")
                    w.finished = True
                    continue
                w.crashes += 1
                w.backoff = min(self.backoff_max, w.backoff * 2 if w.backoff else self.backoff_initial)
                w.restart_at = now + w.backoff
                self.say(
                    f"{w.name} exited with {_status(rc)}; restarting in {w.backoff:g}s (log: {proc.log_path})"
                )
            elif now >= w.restart_at:
                w.restart_at = None
                try:
                    proc.start(wait=False)
                except ProcessError as exc:
                    self.say(f"could not restart {w.name}: {exc}")
                    continue
                self.say(f"{w.name} restarted (pid {proc.pid})")
        return None

    def run(self, stop: threading.Event | None = None) -> int:
        """Supervise until `stop` is set (returns 0) or the gateway shut the system down (returns 0)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            code = self.step()
            if code is not None:
                return code
            stop.wait(self.poll_interval)
        return 0

    def crashes(self, name: str) -> int:
        """How many times the named process has exited abnormally under this supervisor."""
        for w in self._watches:
            if w.name == name:
                return w.crashes
        raise KeyError(name)


def _status(rc: int | None) -> str:
    if rc is not None and rc < 0:
        import signal

        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"status {rc}"
