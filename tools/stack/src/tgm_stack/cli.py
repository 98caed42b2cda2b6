"""`tgm-stack up`: the whole system on this machine, in the foreground, until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from .stack import DEFAULT_MODULES, SERVICES, Stack, StackError, redact_url
from .supervisor import Supervisor


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return key, value


def _replicas(text: str) -> tuple[str, int]:
    svc, value = _key_value(text)
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"replicas must be a number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"replicas must be at least 1: {text!r}")
    return svc, n


def _services(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in names if s not in SERVICES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown service(s) {', '.join(unknown)}; known: {', '.join(SERVICES)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tgm-stack", description="Run TG-Matrix on this machine.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up",
        help="start nats-server, the database server, the services and the gateway; Ctrl-C stops them",
        description="Start the whole system in the foreground with its data in one folder. "
        "NATS_URL / MONGODB_URI, when set, point it at existing servers instead of its own.",
    )
    up.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("TGM_DATA_DIR") or ".tgm"),
        help="folder for all data, keys and logs (default: $TGM_DATA_DIR or .tgm)",
    )
    up.add_argument("--host", default="127.0.0.1", help="gateway address (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=8080, help="gateway port (default 8080; 0 = any free port)")
    up.add_argument(
        "--services",
        type=_services,
        default=SERVICES,
        help=f"comma-separated services to run (default: {','.join(SERVICES)})",
    )
    up.add_argument(
        "--replicas",
        type=_replicas,
        action="append",
        default=[],
        metavar="SERVICE=N",
        help="run N processes of a service (repeatable)",
    )
    up.add_argument(
        "--module",
        type=_key_value,
        action="append",
        default=[],
        metavar="NAME=MODULE",
        help="run another Python module for a child (for development and tests; "
        f"names: {', '.join(DEFAULT_MODULES)})",
    )
    up.add_argument(
        "--ready-timeout", type=float, default=90.0, help="seconds to wait for readiness (default 90)"
    )
    return parser


class _StopRequested(Exception):
    pass


def up(args: argparse.Namespace) -> int:
    modules = dict(args.module)
    unknown = [m for m in modules if m not in DEFAULT_MODULES]
    if unknown:
        say(f"error: --module for unknown child {', '.join(unknown)}; known: {', '.join(DEFAULT_MODULES)}")
        return 2
    try:
        stack = Stack(
            args.data_dir,
            gateway_host=args.host,
            gateway_port=args.port,
            services=args.services,
            replicas=dict(args.replicas),
            modules=modules,
            ready_timeout=args.ready_timeout,
            progress=say,
        )
    except ValueError as exc:
        say(f"error: {exc}")
        return 2

    stop = threading.Event()
    starting = True

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            say("still stopping, please wait")
            return
        stop.set()
        if starting:
            # Interrupt the blocking start (once); `Stack.start` cleans up after itself.
            raise _StopRequested

    def still_stopping(_signum: int, _frame: FrameType | None) -> None:
        say("still stopping, please wait")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    say(f"starting TG-Matrix with data in {stack.data_dir}")
    try:
        stack.start()
        starting = False
        if stop.is_set():
            raise _StopRequested
        _print_banner(stack)
        code = Supervisor(stack, say=say).run(stop)
    except _StopRequested:
        code = 0
    except StackError as exc:
        say(f"error: {exc}")
        code = 1
    finally:
        starting = False
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, still_stopping)
        if stack.running:
            say("stopping")
            stack.stop()
    say("stopped" if code == 0 else "exited with errors")
    return code


def _print_banner(stack: Stack) -> None:
    try:
        key = stack.admin_key
    except StackError:
        key = f"(no {stack.admin_key_file.name}: the gateway did not write one)"
    # The key itself only on a terminal: piped or redirected, stdout ends up in log files.
    if not sys.stdout.isatty():
        key = "(not shown: stdout is not a terminal; read it from the file below)"
    lines = [
        "TG-Matrix is up.",
        f"  gateway    {stack.gateway_url}  (API docs: {stack.gateway_url}/docs)",
        f"  admin key  {key}",
        f"             (stored in {stack.admin_key_file})",
        f"  NATS       {redact_url(stack.nats_url or '')}" + ("" if stack.nats else "  (external)"),
        f"  database   {redact_url(stack.mongodb_uri or '')}" + ("" if stack.mongo else "  (external)"),
        f"  logs       {stack.logs_dir}/",
        *_endpoint_lines(stack),
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)


def _endpoint_lines(stack: Stack) -> list[str]:
    """Each child's health and metrics URLs (the gateway's on its own port, a service's on the
    TGM_HEALTH_PORT the stack gave it), so an operator or a Prometheus finds them."""
    children = sorted(stack.children.values(), key=lambda c: not c.is_gateway)  # gateway, then start order
    if not children:
        return []
    width = max(len(c.name) for c in children)
    lines = ["  health and metrics (/readyz beside each /healthz):"]
    lines += [f"    {c.name:<{width}}  {c.health_url}  {c.metrics_url}" for c in children]
    return lines


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "up":
        return up(args)
    return 2  # pragma: no cover - argparse rejects other commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
