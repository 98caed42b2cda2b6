"""``tg-emulator`` command line: ``serve`` (standalone server + admin API) and ``public-key``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from .emulator import Emulator
from .keys import PUBLIC_KEY_PEM


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tg-emulator", description="A fake Telegram DC for the real Telethon.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the emulator until interrupted")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=9100, help="MTProto port (0 picks a free one)")
    s.add_argument("--admin-port", type=int, default=9101, help="HTTP admin API port (-1 disables it)")
    s.add_argument(
        "--devsite-port", type=int, default=9102, help="my.telegram.org HTTP port (-1 disables it)"
    )
    s.add_argument("--world", help="JSON or YAML world file to seed from")
    s.add_argument("--demo", action="store_true", help="seed the demo world and let people chat")
    s.add_argument("--unlimited", action="store_true", help="switch every rate limit off (benchmarks)")
    s.add_argument("--log-level", default="INFO")
    sub.add_parser("public-key", help="print the emulator's RSA public key (PEM) for telethon add_key")
    return p


async def _serve(args: argparse.Namespace) -> None:
    from .demo import build_demo_world, chatter
    from .limits import Limits
    from .world import World
    from .world.seed import apply_seed, load_file

    world = build_demo_world() if args.demo else World()
    if args.world:
        data = load_file(args.world)
        if not args.demo and "seed" in data:
            world = World(seed=data["seed"])
        apply_seed(world, data)
    if args.unlimited:
        world.limits = Limits.unlimited()
    admin_port = None if args.admin_port < 0 else args.admin_port
    emu = Emulator(world, host=args.host, port=args.port, admin_port=admin_port)
    await emu.start()
    site = None
    if args.devsite_port >= 0:
        from .devsite import DevSite

        site = await DevSite(world, host=args.host, port=args.devsite_port).start()
    # One parseable line so scripts can find the ports (also when 0 was asked for).
    devsite_url = site.url if site else None
    print(
        f"tg-emulator ready port={emu.port} admin_port={emu.admin_port} devsite_url={devsite_url}", flush=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    demo_task = asyncio.create_task(chatter(world)) if args.demo else None
    try:
        await stop.wait()
    finally:
        if demo_task:
            demo_task.cancel()
        if site:
            await site.stop()
        await emu.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "public-key":
        sys.stdout.write(PUBLIC_KEY_PEM)
        return 0
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_serve(args))
    except (OSError, ValueError) as e:
        print(f"tg-emulator: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
