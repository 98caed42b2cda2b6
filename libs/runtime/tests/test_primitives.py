"""The runtime's primitives: background work (`every`, `spawn`), best-effort `emit`, the typed app,
the keyset cursor, and reading subjects back."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import Field
from tgm_contracts import Rpc, Service, subjects
from tgm_contracts.base import Request, Response
from tgm_contracts.command import RPCS
from tgm_contracts.envelope import Headers
from tgm_contracts.events_system import SettingsChanged
from tgm_runtime import DomainError, RuntimeSettings, ServiceRuntime
from tgm_runtime.cursor import Keyset, decode, encode
from tgm_runtime.tasks import BackgroundTasks
from tgm_runtime.testing import runtime_client
from tgm_testing.procs import wait_for_async

pytestmark = [pytest.mark.timeout(30)]


async def until(check: Any, timeout: float = 5.0) -> None:
    await wait_for_async(check, timeout, 0.01)


@pytest.mark.unit
async def test_every_runs_again_after_a_failure_and_wakes_on_demand(caplog: pytest.LogCaptureFixture) -> None:
    tasks = BackgroundTasks(CollectorRegistry())
    calls: list[int] = []

    async def job() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("first round fails")

    handle = tasks.every(3600, job, "test-job")
    tasks.start()
    await until(lambda: len(calls) == 1)
    await until(lambda: handle.running)
    handle.wake()  # without it, the next round is an hour away
    await until(lambda: len(calls) == 2)
    assert any("test-job" in r.getMessage() and r.exc_info for r in caplog.records)
    assert tasks.failures.labels(task="test-job")._value.get() == 1
    await tasks.stop_periodic(1.0)
    assert not handle.running
    # A job declared before start runs again on the next start (a restarted runtime).
    tasks.start()
    await until(lambda: len(calls) == 3)
    await tasks.stop_periodic(1.0)


@pytest.mark.unit
async def test_stop_lets_a_round_finish_then_cancels_what_overruns() -> None:
    tasks = BackgroundTasks(CollectorRegistry())
    finished: list[str] = []
    started = asyncio.Event()

    async def short() -> None:
        started.set()
        await asyncio.sleep(0.05)
        finished.append("short")

    async def endless() -> None:
        await asyncio.sleep(3600)

    tasks.every(3600, short, "short")
    tasks.start()
    await started.wait()
    spawned = tasks.spawn(endless(), "endless")
    await tasks.stop_periodic(2.0)
    assert finished == ["short"]  # the round in progress was allowed to end
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await tasks.stop_spawned(2.0)
    assert spawned.cancelled() and loop.time() - t0 < 1.0 and tasks.pending == 0


@pytest.mark.unit
async def test_a_spawned_failure_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    tasks = BackgroundTasks(CollectorRegistry())

    async def broken() -> None:
        raise ValueError("bad")

    task = tasks.spawn(broken(), "broken-task")
    with pytest.raises(ValueError):
        await task
    assert tasks.failures.labels(task="broken-task")._value.get() == 1
    assert any("broken-task" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


@dataclass(frozen=True)
class EchoApp:
    prefix: str


@pytest.mark.component
async def test_the_app_is_built_at_start_and_emit_never_raises(mongo_server: Any) -> None:
    rt: ServiceRuntime[EchoApp] = ServiceRuntime(
        Service.ANALYTICS, "test", settings=RuntimeSettings(nats_url="nats://127.0.0.1:1")
    )
    built: list[str] = []

    async def factory() -> EchoApp:
        built.append(rt.db.name)  # the database is there when the factory runs
        return EchoApp(prefix="p")

    rt.provide(factory)
    rounds: list[str] = []

    async def tick() -> None:
        rounds.append(rt.app.prefix)

    rt.every(3600, tick, "tick")
    with pytest.raises(RuntimeError):
        _ = rt.app
    async with runtime_client(rt, mongo_server.uri):
        assert rt.app == EchoApp(prefix="p") and len(built) == 1
        await until(lambda: rounds == ["p"])

        async def refuse(event: Any) -> None:
            raise ConnectionError("bus away")

        rt.publish = refuse  # type: ignore[method-assign]
        assert await rt.emit(SettingsChanged(section="general", version=1, values={})) is False
        assert rt.emit_failures.labels(event=SettingsChanged.NAME)._value.get() == 1


@pytest.mark.unit
def test_keyset_pages_in_order_with_nulls_lowest() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    docs = [{"_id": f"d{i}", "at": (t0 + timedelta(minutes=i % 3)) if i % 4 else None} for i in range(10)]

    def matches(doc: dict[str, Any], q: dict[str, Any]) -> bool:  # a tiny evaluator of what Keyset builds
        for key, cond in q.items():
            if key == "$or":
                if not any(matches(doc, c) for c in cond):
                    return False
            elif key == "$and":
                if not all(matches(doc, c) for c in cond):
                    return False
            elif isinstance(cond, dict):
                value, present = doc.get(key), key in doc
                for op, arg in cond.items():
                    ok = {
                        "$gt": lambda v, a: v is not None and v > a,
                        "$lt": lambda v, a: v is not None and v < a,
                        "$ne": lambda v, a: v != a,
                        "$exists": lambda v, a, present=present: present == a,
                    }[op](value, arg)
                    if not ok:
                        return False
            elif doc.get(key) != cond:
                return False
        return True

    def key(doc: dict[str, Any]) -> tuple[Any, ...]:
        return (doc["at"] is not None, doc["at"] or t0, doc["_id"])

    for descending in (False, True):
        order = Keyset(("at", "_id"), descending=descending, nullable=frozenset({"at"}))
        expected = sorted(docs, key=key, reverse=descending)
        seen: list[str] = []
        cursor: str | None = None
        while True:
            q = order.where({}, cursor)
            rest = sorted((d for d in docs if matches(d, q)), key=key, reverse=descending)
            page, cursor = order.page(rest[:4], 3)
            seen += [d["_id"] for d in page]
            if cursor is None:
                break
        assert seen == [d["_id"] for d in expected]


@pytest.mark.unit
def test_cursors_round_trip_and_refuse_what_they_did_not_make() -> None:
    at = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    assert decode(encode([at, "x", 3], "t"), 3, "t") == [at, "x", 3]
    for bad in ("", "!!!", encode([1], "t"), encode([1, 2, 3], "other"), "eyJ2IjoxfQ"):
        with pytest.raises(DomainError) as info:
            decode(bad, 3, "t")
        assert info.value.code.value == "VALIDATION_ERROR"


@pytest.mark.unit
def test_subjects_parse_back_to_what_built_them() -> None:
    acct = subjects.account("a1", "join-group", 2)
    assert subjects.parse_account(acct) == subjects.AccountSubject("a1", "join-group", 2)
    assert subjects.account_of(acct) == "a1"
    evt = subjects.event(Service.CAMPAIGN, "job-sent", 1)
    assert subjects.parse_service(evt) == subjects.ServiceSubject("campaign", "evt", "job-sent", 1)
    for other in ("tgm.acct.a1.x", "tgm.acct..x.v1", "tgm.acct.a1.x.vv", "foo.acct.a1.x.v1", "tgm.stream.s"):
        assert subjects.parse_account(other) is None
    assert subjects.parse_service(acct) is None
    with pytest.raises(ValueError):
        subjects.account_of(evt)


class EchoRequest(Request):
    text: str = Field(min_length=1, max_length=10)


class EchoResponse(Response):
    text: str
    length: int


class Upper:
    async def run(self, req: EchoRequest) -> EchoResponse:
        return EchoResponse(text=req.text.upper(), length=len(req.text))

    async def wrong(self, req: SettingsChanged) -> EchoResponse:
        raise AssertionError("never called")

    async def signed(self, req: EchoRequest, by: str | None) -> EchoResponse:
        return EchoResponse(text=f"{req.text} by {by}", length=len(req.text))


@dataclass(frozen=True)
class RoutedApp:
    upper: Upper


class Echo(Rpc, name="test-echo-routed", owner=Service.ANALYTICS, request=EchoRequest, response=EchoResponse):
    """A call for this test only: taken out of the declared calls so no schema or catalogue sees it."""


RPCS.remove(Echo)


def routed_runtime(method: Any, *, with_principal: bool = False) -> ServiceRuntime[RoutedApp]:
    rt: ServiceRuntime[RoutedApp] = ServiceRuntime(
        Service.ANALYTICS, "test", settings=RuntimeSettings(nats_url="nats://127.0.0.1:1")
    )

    async def factory() -> RoutedApp:
        return RoutedApp(upper=Upper())

    rt.provide(factory)
    if with_principal:
        rt.route_with_principal(Echo, method)
    else:
        rt.route(Echo, method)
    return rt


@pytest.mark.component
async def test_route_serves_a_command_by_one_use_case_method_checked_at_start(mongo_server: Any) -> None:
    async with runtime_client(routed_runtime(lambda app: app.upper.run), mongo_server.uri) as client:
        assert await client.request(Echo.SUBJECT, {"text": "hi"}) == {
            "ok": True,
            "data": {"text": "HI", "length": 2},
        }
        bad = await client.request(Echo.SUBJECT, {"text": ""})
        assert bad["error"]["code"] == "VALIDATION_ERROR"
    with pytest.raises(TypeError, match="takes SettingsChanged"):
        async with runtime_client(routed_runtime(lambda app: app.upper.wrong), mongo_server.uri):
            pass
    with pytest.raises(TypeError, match=r"must take exactly the request$"):
        async with runtime_client(routed_runtime(lambda app: app.upper.signed), mongo_server.uri):
            pass


@pytest.mark.component
async def test_route_with_principal_passes_who_calls_to_the_use_case(mongo_server: Any) -> None:
    async with runtime_client(
        routed_runtime(lambda app: app.upper.signed, with_principal=True), mongo_server.uri
    ) as client:
        reply = await client.broker.request(
            {"text": "hi"}, subject=Echo.SUBJECT, headers={Headers.PRINCIPAL: "ops@example.com"}, timeout=30
        )
        assert json.loads(reply.body) == {"ok": True, "data": {"text": "hi by ops@example.com", "length": 2}}
        anonymous = await client.request(Echo.SUBJECT, {"text": "hi"})
        assert anonymous["data"]["text"] == "hi by None"
    with pytest.raises(TypeError, match="must take exactly the request and the principal"):
        async with runtime_client(
            routed_runtime(lambda app: app.upper.run, with_principal=True), mongo_server.uri
        ):
            pass
