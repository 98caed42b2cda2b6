"""pytest fixtures: each fake on a free loopback port for the whole session, reset between tests.

Use with ``pytest_plugins = ["tgm_fakes.testing"]``. Each fixture yields a `RunningFake` with `url`
(the API base URL to configure), `key` (a valid API key), `state` (faults and recorded requests) and,
for MaiAgent, DmFlow and Tailchat, `world` (their data). `fake_tailchat` also re-seeds its world and
forgets its callbacks around each test; its `key` is the default app's `X-App-Secret` and `extra`
holds the seeded ids (`app_id`, `bot_user_id`, `alice_id`, `bob_id`, `group_id`, `group_converse_id`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from . import dmflow, maiagent, openai, tailchat
from .common import FakeState, LoopbackServer


@dataclass
class RunningFake:
    server: LoopbackServer
    url: str
    key: str
    state: FakeState
    world: Any = None
    extra: dict[str, str] | None = None

    def reset(self) -> None:
        self.state.faults.set("ok")
        self.state.faults.delay = 30.0
        self.state.requests.clear()
        if isinstance(self.world, tailchat.TailchatWorld):
            self.world.reset()
            self.server.app.state.callbacks.clear()


def _serve(app: Any) -> LoopbackServer:
    return LoopbackServer(app).start()


@pytest.fixture(scope="session")
def _fake_openai_server() -> Iterator[RunningFake]:
    state = FakeState()
    server = _serve(openai.build(state))
    yield RunningFake(server, server.url + "/v1", "sk-test", state)
    server.stop()


@pytest.fixture(scope="session")
def _fake_maiagent_server() -> Iterator[RunningFake]:
    state, world = FakeState(), maiagent.MaiWorld()
    server = _serve(maiagent.build(world, state))
    yield RunningFake(
        server,
        server.url + "/api/v1/",
        maiagent.DEFAULT_KEY,
        state,
        world,
        {"chatbot_id": maiagent.DEFAULT_CHATBOT},
    )
    server.stop()


@pytest.fixture(scope="session")
def _fake_dmflow_server() -> Iterator[RunningFake]:
    state, world = FakeState(), dmflow.DmWorld()
    server = _serve(dmflow.build(world, state))
    yield RunningFake(
        server,
        server.url,
        dmflow.DEFAULT_KEY,
        state,
        world,
        {"faq_id": dmflow.FAQ_ID, "tableqa_id": dmflow.TABLEQA_ID},
    )
    server.stop()


@pytest.fixture(scope="session")
def _fake_tailchat_server() -> Iterator[RunningFake]:
    state, world = FakeState(), tailchat.TailchatWorld()
    server = _serve(tailchat.build(world, state))
    yield RunningFake(
        server,
        server.url,
        tailchat.DEFAULT_APP_SECRET,
        state,
        world,
        {
            "app_id": tailchat.DEFAULT_APP_ID,
            "bot_user_id": tailchat.BOT_USER_ID,
            "alice_id": tailchat.ALICE_ID,
            "bob_id": tailchat.BOB_ID,
            "group_id": tailchat.GROUP_ID,
            "group_converse_id": tailchat.GROUP_CONVERSE_ID,
        },
    )
    server.stop()


def _fresh(name: str) -> Any:
    """The `fake_<name>` fixture: the session's server of that fake, reset before and after a test."""

    @pytest.fixture(name=f"fake_{name}")
    def fresh(request: pytest.FixtureRequest) -> Iterator[RunningFake]:
        running: RunningFake = request.getfixturevalue(f"_fake_{name}_server")
        running.reset()
        yield running
        running.reset()

    return fresh


fake_openai = _fresh("openai")
fake_maiagent = _fresh("maiagent")
fake_dmflow = _fresh("dmflow")
fake_tailchat = _fresh("tailchat")
