"""`@answers(Cmd)` on a use case method and `route_use_case`: every marked method is served, a method
without a request answers an `Empty` command, `principal=True` passes who calls, one method may answer
two commands, and a wrong declaration fails before any call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import Field
from tgm_contracts import Rpc, Service
from tgm_contracts.base import Empty, Request, Response
from tgm_contracts.command import RPCS
from tgm_contracts.envelope import Headers
from tgm_contracts.events_analytics import AlertsCleared
from tgm_runtime import RuntimeSettings, ServiceRuntime
from tgm_runtime.routes import answered, answers, consumes, hears, reactions, route_use_case
from tgm_runtime.testing import runtime_client

pytestmark = [pytest.mark.timeout(30)]


class ShoutRequest(Request):
    text: str = Field(min_length=1, max_length=10)


class ShoutResponse(Response):
    text: str


class Shout(
    Rpc, name="test-routes-shout", owner=Service.ANALYTICS, request=ShoutRequest, response=ShoutResponse
):
    """Calls for this test only: taken out of the declared calls so no schema or catalogue sees them."""


class Count(Rpc, name="test-routes-count", owner=Service.ANALYTICS, request=Empty, response=ShoutResponse):
    pass


class Sign(
    Rpc, name="test-routes-sign", owner=Service.ANALYTICS, request=ShoutRequest, response=ShoutResponse
):
    pass


class SignAlias(
    Rpc, name="test-routes-sign-alias", owner=Service.ANALYTICS, request=ShoutRequest, response=ShoutResponse
):
    pass


class Whoami(Rpc, name="test-routes-whoami", owner=Service.ANALYTICS, request=Empty, response=ShoutResponse):
    pass


for _call in (Shout, Count, Sign, SignAlias, Whoami):
    RPCS.remove(_call)


class Shouter:
    def __init__(self) -> None:
        self.shouted = 0

    @answers(Shout)
    async def shout(self, req: ShoutRequest) -> ShoutResponse:
        self.shouted += 1
        return ShoutResponse(text=req.text.upper())

    @answers(Count)
    async def count(self) -> ShoutResponse:
        return ShoutResponse(text=str(self.shouted))

    @answers(Sign, principal=True)
    @answers(SignAlias, principal=True)
    async def sign(self, req: ShoutRequest, by: str | None) -> ShoutResponse:
        return ShoutResponse(text=f"{req.text} by {by}")

    @answers(Whoami, principal=True)
    async def whoami(self, by: str | None) -> ShoutResponse:
        return ShoutResponse(text=str(by))

    async def not_served(self, req: ShoutRequest) -> ShoutResponse:
        raise AssertionError("never routed")


class Mistaken:
    @answers(Shout)
    async def shout(self) -> ShoutResponse:
        raise AssertionError("never routed")


class Unsigned:
    @answers(Count, principal=True)
    async def count(self) -> ShoutResponse:
        raise AssertionError("never routed")


@dataclass(frozen=True)
class ShoutApp:
    shouter: Shouter


def shout_runtime() -> ServiceRuntime[ShoutApp]:
    rt: ServiceRuntime[ShoutApp] = ServiceRuntime(
        Service.ANALYTICS, "test", settings=RuntimeSettings(nats_url="nats://127.0.0.1:1")
    )

    async def factory() -> ShoutApp:
        return ShoutApp(shouter=Shouter())

    rt.provide(factory)
    route_use_case(rt, Shouter, lambda app: app.shouter)
    return rt


@pytest.mark.unit
def test_answered_lists_the_marked_methods_and_refuses_a_request_dropped() -> None:
    assert sorted((a.cmd.NAME, a.name, a.takes_request, a.takes_principal) for a in answered(Shouter)) == [
        ("test-routes-count", "count", False, False),
        ("test-routes-shout", "shout", True, False),
        ("test-routes-sign", "sign", True, True),
        ("test-routes-sign-alias", "sign", True, True),
        ("test-routes-whoami", "whoami", False, True),
    ]
    with pytest.raises(TypeError, match="takes no request but test-routes-shout sends one"):
        answered(Mistaken)
    with pytest.raises(TypeError, match=r"Unsigned\.count takes no principal"):
        answered(Unsigned)
    rt: ServiceRuntime[Any] = ServiceRuntime(
        Service.ANALYTICS, "test", settings=RuntimeSettings(nats_url="nats://127.0.0.1:1")
    )
    with pytest.raises(ValueError, match="ShoutApp has no @answers, @hears or @consumes method"):
        route_use_case(rt, ShoutApp, lambda app: app)


@pytest.mark.component
async def test_route_use_case_serves_every_marked_method_of_the_current_app(mongo_server: Any) -> None:
    async with runtime_client(shout_runtime(), mongo_server.uri) as client:
        assert await client.request(Shout.SUBJECT, {"text": "hi"}) == {"ok": True, "data": {"text": "HI"}}
        bad = await client.request(Shout.SUBJECT, {"text": ""})
        assert bad["error"]["code"] == "VALIDATION_ERROR"
        # The method without a request is called on the same use case the other one counted on.
        assert await client.request(Count.SUBJECT, {}) == {"ok": True, "data": {"text": "1"}}
        # The empty request is still validated: an unknown field is refused, the method not called.
        unknown = await client.request(Count.SUBJECT, {"extra": 1})
        assert unknown["error"]["code"] == "VALIDATION_ERROR"
        assert client.runtime.app.shouter.shouted == 1


@pytest.mark.component
async def test_route_use_case_passes_who_calls_to_a_method_marked_principal(mongo_server: Any) -> None:
    async with runtime_client(shout_runtime(), mongo_server.uri) as client:

        async def call(subject: str, body: dict[str, Any]) -> Any:
            headers = {Headers.PRINCIPAL: "ops@example.com"}
            reply = await client.broker.request(body, subject=subject, headers=headers, timeout=30)
            return json.loads(reply.body)

        for subject in (Sign.SUBJECT, SignAlias.SUBJECT):
            assert await call(subject, {"text": "hi"}) == {
                "ok": True,
                "data": {"text": "hi by ops@example.com"},
            }
        assert await call(Whoami.SUBJECT, {}) == {"ok": True, "data": {"text": "ops@example.com"}}
        assert (await client.request(Whoami.SUBJECT, {}))["data"]["text"] == "None"
        assert (await call(Whoami.SUBJECT, {"extra": 1}))["error"]["code"] == "VALIDATION_ERROR"


class Listener:
    def __init__(self) -> None:
        self.heard: list[tuple[str, int]] = []

    @hears(AlertsCleared, "test_cleared", max_workers=4, order_by=lambda e: e.cleared_by)
    async def on_cleared(self, evt: AlertsCleared) -> None:
        self.heard.append(("shared", evt.affected))

    @consumes(AlertsCleared, durable="test_cleared_own")
    async def on_cleared_too(self, evt: AlertsCleared) -> None:
        self.heard.append(("own", evt.affected))


@dataclass(frozen=True)
class ListenApp:
    listener: Listener


@pytest.mark.unit
async def test_route_use_case_hands_the_marked_events_to_the_current_app() -> None:
    assert sorted((r.name, r.durable, r.max_workers, name) for r, name in reactions(Listener)) == [
        ("test_cleared", None, 4, "on_cleared"),
        ("test_cleared_own", "test_cleared_own", 1, "on_cleared_too"),
    ]
    rt: ServiceRuntime[ListenApp] = ServiceRuntime(
        Service.ANALYTICS, "test", settings=RuntimeSettings(nats_url="nats://127.0.0.1:1")
    )
    durables: list[str] = []
    own: list[Any] = []

    def subscribe(event: Any, durable: str, *, max_workers: int = 1) -> Any:
        durables.append(durable)

        def register(fn: Any) -> Any:
            own.append(fn)
            return fn

        return register

    rt.subscribe_events = subscribe  # type: ignore[method-assign]
    route_use_case(rt, Listener, lambda app: app.listener)
    [shared] = rt._shared[AlertsCleared].handlers
    assert (shared.name, shared.order_by is not None, rt._shared[AlertsCleared].max_workers) == (
        "test_cleared",
        True,
        4,
    )
    assert durables == ["test_cleared_own"]
    app = ListenApp(listener=Listener())
    rt._app = app  # the app of the current start
    await shared.fn(AlertsCleared(affected=2))
    await own[0](AlertsCleared(affected=3))
    assert app.listener.heard == [("shared", 2), ("own", 3)]
