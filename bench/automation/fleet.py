"""bench/automation's stand-in for tg-session, in a process of its own (started by decision.py).

`tgm_campaign.testing.FakeFleet`, as the campaign component tests use it: three accounts, two of them
members of the bench's group, serving tg-session's subjects (accounts, pick-accounts, resolve-peer,
get-group-members with no admins, the send path). It writes `--ready-file` once it serves and runs
until SIGTERM. The load itself (`message-received` events) is published by decision.py, which
measures; this process only answers campaign's calls, as tg-session would.

    .venv/bin/python bench/automation/fleet.py --nats URL --mongo URI --prefix P --chat ID --ready-file F
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path


async def serve(args: argparse.Namespace) -> None:
    from tgm_campaign.testing import FakeFleet, FleetChat

    fleet = FakeFleet(args.nats, args.mongo, ["acct0", "acct1", "acct2"], database_prefix=args.prefix)
    fleet.chats.append(FleetChat(chat_id=args.chat, title="Deals", username="dealsbench"))
    for acct in ("acct0", "acct1"):
        fleet.accounts[acct].members_of = {args.chat}
    await fleet.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    Path(args.ready_file).write_text("ready\n")
    await stop.wait()
    await fleet.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nats", required=True)
    ap.add_argument("--mongo", required=True)
    ap.add_argument("--prefix", required=True, help="database prefix of the fleet's own database")
    ap.add_argument("--chat", type=int, required=True)
    ap.add_argument("--ready-file", required=True)
    asyncio.run(serve(ap.parse_args()))


if __name__ == "__main__":
    main()
