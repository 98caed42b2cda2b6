"""Background work a service owns: periodic jobs (`every`) and tracked tasks (`spawn`).

Every background coroutine of every service runs here, so that all of them are stopped the same way
and none fails silently:
- a failure is logged with its traceback and counted (`tgm_background_failures_total{task}`); a
  periodic job runs again next round, a spawned task is over;
- on stop, periodic jobs finish the round they are in (up to the stop timeout) and are then
  cancelled; spawned tasks still running are cancelled and awaited within the same timeout.

A hand-written `asyncio.create_task` loop in a service is refused by tests/unit/test_service_shape.py.
Structured concurrency inside one call (an `asyncio.TaskGroup` that the call awaits) is not background
work and stays where it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger("tgm.runtime.tasks")

T = TypeVar("T")
Seconds = float | Callable[[], float]


class Periodic:
    """One periodic job: `fn` now (or after `first_after`), then every `seconds` after each run ends."""

    def __init__(
        self,
        owner: BackgroundTasks,
        name: str,
        seconds: Seconds,
        fn: Callable[[], Awaitable[Any]],
        first_after: float,
    ) -> None:
        self.name = name
        self._runs = 0
        self._owner = owner
        self._seconds = seconds
        self._fn = fn
        self._first_after = first_after
        self._wake = asyncio.Event() if _has_loop() else None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        #: For a job declared before start: the copy running in the current start.
        self._live: Periodic | None = None

    def interval(self) -> float:
        return float(self._seconds() if callable(self._seconds) else self._seconds)

    def wake(self) -> None:
        """Run the next round now instead of at the end of the wait (e.g. new work arrived)."""
        if self._live is not None:
            self._live.wake()
        elif self._wake is not None:
            self._wake.set()

    @property
    def runs(self) -> int:
        """Rounds ended (raised or not) since this start; for a job declared before start, its live copy's."""
        if self._live is not None:
            return self._live.runs
        return self._runs

    @property
    def running(self) -> bool:
        if self._live is not None:
            return self._live.running
        return self._task is not None and not self._task.done()

    def _start(self) -> None:
        if self._task is None:
            self._wake = self._wake or asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def _pause(self, seconds: float) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, seconds))
        self._wake.clear()

    async def _loop(self) -> None:
        if self._first_after > 0:
            await self._pause(self._first_after)
        while not self._stopping:
            try:
                await self._fn()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._owner.failed(self.name)
            self._runs += 1
            if self._stopping:
                break
            try:
                wait = self.interval()
            except Exception:
                self._owner.failed(self.name)
                wait = 1.0
            await self._pause(wait)

    async def _stop(self, deadline: float) -> None:
        self._stopping = True
        self.wake()
        task = self._task
        if task is None:
            return
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), timeout=max(0.0, deadline - time.monotonic()))
        if not task.done():
            log.warning("background job %s did not finish its round in time; cancelling it", self.name)
        await _cancel(task)


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class BackgroundTasks:
    """The periodic jobs and spawned tasks of one runtime; `start` and `stop` belong to the runtime."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._declared: list[Periodic] = []
        self._running: list[Periodic] = []
        self._spawned: set[asyncio.Task[Any]] = set()
        self._started = False
        self.failures = Counter(
            "tgm_background_failures_total",
            "Background jobs and tasks that raised, by name",
            ["task"],
            registry=registry,
        )

    def failed(self, name: str) -> None:
        log.exception("background task %s failed", name)
        self.failures.labels(task=name).inc()

    def every(
        self, seconds: Seconds, fn: Callable[[], Awaitable[Any]], name: str, *, first_after: float = 0.0
    ) -> Periodic:
        """Run `fn` every `seconds` (a number, or a function read before each wait) while the runtime
        runs. Declared before start, it begins once the service has started; after, at once."""
        job = Periodic(self, name, seconds, fn, first_after)
        if self._started:
            self._running.append(job)
            job._start()
        else:
            self._declared.append(job)  # started by every start of the runtime (tests restart one)
        return job

    def job(self, name: str) -> Periodic:
        """The periodic job declared as `name` (KeyError if none): e.g. to wait for its first round."""
        for job in (*self._declared, *self._running):
            if job.name == name:
                return job
        raise KeyError(name)

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Run `coro` in the background, tracked: logged if it fails, cancelled when the runtime stops.
        Cancel the returned task to end it early."""
        task = asyncio.get_running_loop().create_task(self._guard(coro, name), name=name)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, T], name: str) -> T:
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failed(name)
            raise

    @property
    def pending(self) -> int:
        return sum(1 for t in self._spawned if not t.done())

    def start(self) -> None:
        self._started = True
        for declared in self._declared:
            job = Periodic(self, declared.name, declared._seconds, declared._fn, declared._first_after)
            self._running.append(job)
            job._start()
            declared._live = job

    async def stop_periodic(self, timeout: float) -> None:
        """Let every periodic job end its round (at most `timeout` s), then cancel what is left."""
        self._started = False
        deadline = time.monotonic() + timeout
        jobs, self._running = self._running, []
        await asyncio.gather(*(job._stop(deadline) for job in jobs))
        for declared in self._declared:
            declared._live = None

    async def stop_spawned(self, timeout: float) -> None:
        """Cancel the spawned tasks still running and wait for them (at most `timeout` s)."""
        tasks = [t for t in self._spawned if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                log.warning("background task %s ignored cancellation for %.1f s", task.get_name(), timeout)
            for task in done:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    task.result()
        self._spawned.clear()
