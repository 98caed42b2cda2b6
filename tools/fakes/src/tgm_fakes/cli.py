"""`tgm-fakes [--openai PORT] [--maiagent PORT] [--dmflow PORT]`: serve the fakes for offline demos."""

from __future__ import annotations

import argparse
import signal
import threading

from . import dmflow, maiagent, openai
from .common import LoopbackServer


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="tgm-fakes", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--openai", type=int, default=18080, help="port of the OpenAI-compatible fake (0 = off)")
    p.add_argument("--maiagent", type=int, default=18081, help="port of the MaiAgent fake (0 = off)")
    p.add_argument("--dmflow", type=int, default=18082, help="port of the DmFlow fake (0 = off)")
    args = p.parse_args(argv)
    servers = []
    if args.openai:
        s = LoopbackServer(openai.build(), args.host, args.openai).start()
        print(f"openai   {s.url}/v1   key sk-test", flush=True)
        servers.append(s)
    if args.maiagent:
        s = LoopbackServer(maiagent.build(), args.host, args.maiagent).start()
        print(
            f"maiagent {s.url}/api/v1/   key {maiagent.DEFAULT_KEY}   chatbot {maiagent.DEFAULT_CHATBOT}",
            flush=True,
        )
        servers.append(s)
    if args.dmflow:
        s = LoopbackServer(dmflow.build(), args.host, args.dmflow).start()
        print(
            f"dmflow   {s.url}   key {dmflow.DEFAULT_KEY}   faq {dmflow.FAQ_ID}   tableqa {dmflow.TABLEQA_ID}",
            flush=True,
        )
        servers.append(s)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for s in servers:
        s.stop()


if __name__ == "__main__":
    main()
