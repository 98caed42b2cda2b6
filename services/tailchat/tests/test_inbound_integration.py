"""Tailchat's callbacks through the gateway, on a real nats-server and database: the tailchat service
and the gateway (its real FastAPI app under uvicorn) in this process, and the seed-faithful Tailchat
fake of tools/fakes, which POSTs its callbacks to the bot's callbackUrl exactly as the real server
does. The app is registered and its token rotated through the gateway (which sets the callbackUrl
on the fake, as the README's setup says); then a person DMs the bot, starts a DM by deep link and
presses a button, and each becomes one event on TGM_EVENTS — a delivery posted twice is one event,
and a wrong token or app is 404 with nothing published."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import uvicorn
from tgm_fakes.testing import RunningFake
from tgm_gateway.bootstrap import build as build_gateway
from tgm_gateway.bootstrap import build_app
from tgm_gateway.settings import GatewaySettings
from tgm_runtime import RuntimeSettings
from tgm_tailchat.bootstrap import build as build_tailchat
from tgm_tailchat.settings import TailchatSettings
from tgm_testing.procs import free_port, wait_for_async

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
pytest_plugins = ["tgm_fakes.testing"]


@dataclass
class Edge:
    url: str
    http: httpx.AsyncClient  # the gateway, with the admin key
    events: list[dict[str, Any]]  # every tailchat event on TGM_EVENTS, in order

    async def command(self, name: str, payload: dict[str, Any]) -> Any:
        answer = (await self.http.post(f"/api/v1/commands/{name}", json=payload)).json()
        assert answer["ok"], answer
        return answer["data"]

    async def settled(self, name: str, count: int) -> list[dict[str, Any]]:
        """The events of `name` once there are `count` of them (and nothing else is in flight)."""
        await wait_for_async(lambda: len(self.named(name)) >= count, timeout=10)
        return self.named(name)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["subject"].split(".")[3] == name]


@pytest.fixture
async def edge(nats_server: Any, mongo_server: Any, tmp_path: Path) -> AsyncIterator[Edge]:
    prefix, port = f"tci{uuid.uuid4().hex[:8]}_", free_port()
    url = f"http://127.0.0.1:{port}"

    def rs(name: str) -> RuntimeSettings:
        return RuntimeSettings(
            nats_url=nats_server.url,
            mongodb_uri=mongo_server.uri,
            database_prefix=prefix,
            data_dir=tmp_path,
            replica_id=f"{name}-{uuid.uuid4().hex[:4]}",
        )

    tailchat_settings = TailchatSettings(public_url=url)
    tailchat_settings.runtime = rs("tailchat")
    tailchat = build_tailchat(tailchat_settings)
    await tailchat.start()
    gateway_settings = GatewaySettings(port=port, fanout_window_seconds=0.5)
    gateway_settings.runtime = rs("gateway")
    gateway = build_gateway(gateway_settings)
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(gateway, gateway_settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve())
    await wait_for_async(lambda: server.started, timeout=20)
    key = (tmp_path / "admin.key").read_text().strip()

    events: list[dict[str, Any]] = []
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()

    async def seen(msg: Any) -> None:
        events.append(
            {"subject": msg.subject, "data": json.loads(msg.data), "msgId": msg.header.get("Nats-Msg-Id")}
        )

    # An ordered consumer of the stream itself: what JetStream kept, after its duplicate window.
    sub = await js.subscribe("tgm.tailchat.evt.>", cb=seen, ordered_consumer=True, deliver_policy="new")
    http = httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=30)
    try:
        yield Edge(url, http, events)
    finally:
        await http.aclose()
        await sub.unsubscribe()
        await nc.close()
        server.should_exit = True
        await asyncio.wait_for(serving, 15)
        for runtime in (tailchat, gateway):
            if runtime.mongo is not None:
                await runtime.mongo.drop_database(runtime.database_name())
        await tailchat.stop()


async def test_callbacks_from_the_fake_become_one_event_each(edge: Edge, fake_tailchat: RunningFake) -> None:
    extra = fake_tailchat.extra or {}
    app_id, bot_id, alice = extra["app_id"], extra["bot_user_id"], extra["alice_id"]
    people = httpx.AsyncClient(base_url=fake_tailchat.url + "/_fake/tailchat", timeout=30)

    registered = await edge.command(
        "register-tailchat-app",
        {"serverUrl": fake_tailchat.url, "appId": app_id, "appSecret": fake_tailchat.key},
    )
    rotated = await edge.command("rotate-tailchat-callback-token", {"appId": app_id})
    assert rotated["applied"] and rotated["callbackUrl"] == edge.url + rotated["callbackPath"]
    world = (await people.get("/world")).json()
    assert world["apps"][0]["bot"]["callbackUrl"] == rotated["callbackUrl"]

    # Alice DMs the bot: the fake POSTs `inbox` to the gateway, answered 200, one event.
    dm = (await people.post("/dm", json={"userId": alice, "content": "hi bot", "plain": "hi bot"})).json()
    (delivery,) = dm["callbacks"]
    assert (delivery["kind"], delivery["status"]) == ("inbox", 200)
    (received,) = await edge.settled("channel-message-received", 1)
    message = received["data"]
    assert (message["channel"], message["appId"], message["botUserId"]) == ("tailchat", app_id, bot_id)
    assert (message["senderId"], message["text"], message["isDm"]) == (alice, "hi bot", True)
    assert message["messageId"] == dm["message"]["_id"] and received["msgId"] == message["eventId"]

    # The same delivery posted again (a replay): answered `duplicate`, no second event.
    again = await edge.http.post(
        delivery["url"], content=json.dumps(delivery["body"]), headers=delivery["headers"]
    )
    assert again.status_code == 200 and again.json()["data"]["outcome"] == "duplicate"

    # A deep link starts a DM: dm.start with its params.
    started = (await people.post("/dm-start", json={"userId": alice, "payload": "promo_7"})).json()
    assert started["callbacks"][0]["status"] == 200
    (dm_started,) = await edge.settled("channel-dm-started", 1)
    assert (dm_started["data"]["userId"], dm_started["data"]["startParam"]) == (alice, "promo_7")

    # A button of a message with markup, pressed twice with one trace: one button-pressed to answer.
    markup = {
        "inline": {
            "actions": [{"id": "confirm", "type": "invoke", "label": "Confirm", "params": {"order": 7}}],
            "rows": [{"actions": ["confirm"]}],
        }
    }
    offer = await edge.command(
        "send-channel-message", {"appId": app_id, "userId": alice, "text": "OK?", "markup": markup}
    )
    press = {"userId": alice, "messageId": offer["messageId"], "actionId": "confirm", "traceId": "tc-in-1"}
    pressed = (await people.post("/press", json=press)).json()
    (click,) = pressed["callbacks"]
    assert (click["kind"], click["status"]) == ("buttonCallback", 200)
    replay = await edge.http.post(click["url"], content=json.dumps(click["body"]), headers=click["headers"])
    assert replay.json()["data"]["outcome"] == "duplicate"
    (button,) = await edge.settled("button-pressed", 1)
    assert button["data"]["actionId"] == "confirm" and button["data"]["params"] == {"order": 7}
    assert (button["data"]["traceId"], button["data"]["userId"]) == ("tc-in-1", alice)
    answered = await edge.command(
        "answer-callback", {"appId": app_id, "traceId": "tc-in-1", "userId": alice, "text": "Done"}
    )
    assert answered["answered"]

    # An old token, a wrong one, another app, a token that could be none: 404, the same answer, nothing published.
    path = rotated["callbackPath"]
    wrong = [
        registered["callbackPath"],  # the registration's token, replaced by the rotation
        path[: -len(path.rsplit("/", 1)[1])] + "x" * 43,
        path.replace(f"/tailchat/{app_id}/", "/tailchat/nosuchapp/"),
        path[: -len(path.rsplit("/", 1)[1])] + "not~a~token",
    ]
    for bad in wrong:
        r = await edge.http.post(bad, content=json.dumps(delivery["body"]), headers=delivery["headers"])
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND", (bad, r.text)
    # A malformed body with the good token is 400, one over the callback cap (64 KiB) 413.
    bad_json = await edge.http.post(path, content=b"{not json", headers=delivery["headers"])
    assert bad_json.status_code == 400
    huge = await edge.http.post(
        path, content=b'{"pad": "' + b"x" * 70_000 + b'"}', headers=delivery["headers"]
    )
    assert huge.status_code == 413 and huge.json()["error"]["details"]["limitBytes"] == 64 * 1024

    # One more delivery marks the end: everything before it has arrived, and nothing twice.
    await people.post("/dm", json={"userId": alice, "content": "last"})
    await edge.settled("channel-message-received", 2)
    names = [e["subject"].split(".")[3] for e in edge.events]
    assert names == [
        "channel-message-received",
        "channel-dm-started",
        "button-pressed",
        "channel-message-received",
    ]
    await people.aclose()
