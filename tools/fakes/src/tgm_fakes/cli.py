"""`tgm-fakes [--openai PORT] [--maiagent PORT] [--dmflow PORT] [--tailchat PORT]`: serve the fakes for offline
demos."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from typing import NamedTuple

from starlette.applications import Starlette

from . import dmflow, maiagent, openai, tailchat
from .common import LoopbackServer


class Fake(NamedTuple):
    """One fake the command can serve: its flag, default port, app, and what to use it with (after its URL)."""

    name: str
    title: str
    port: int
    build: Callable[[], Starlette]
    usage: str


FAKES = (
    Fake("openai", "OpenAI-compatible", 18080, openai.build, "/v1   key sk-test"),
    Fake(
        "maiagent",
        "MaiAgent",
        18081,
        maiagent.build,
        f"/api/v1/   key {maiagent.DEFAULT_KEY}   chatbot {maiagent.DEFAULT_CHATBOT}",
    ),
    Fake(
        "dmflow",
        "DmFlow",
        18082,
        dmflow.build,
        f"   key {dmflow.DEFAULT_KEY}   faq {dmflow.FAQ_ID}   tableqa {dmflow.TABLEQA_ID}",
    ),
    Fake(
        "tailchat",
        "Tailchat",
        18083,
        tailchat.build,
        f"   X-App-Secret {tailchat.DEFAULT_APP_SECRET}   bot {tailchat.BOT_USER_ID}   test API /_fake/tailchat",
    ),
)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="tgm-fakes", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    for fake in FAKES:
        p.add_argument(
            f"--{fake.name}", type=int, default=fake.port, help=f"port of the {fake.title} fake (0 = off)"
        )
    args = p.parse_args(argv)
    servers = []
    for fake in FAKES:
        port = getattr(args, fake.name)
        if port:
            s = LoopbackServer(fake.build(), args.host, port).start()
            print(f"{fake.name:<8} {s.url}{fake.usage}", flush=True)
            servers.append(s)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for s in servers:
        s.stop()


if __name__ == "__main__":
    main()
