"""`tgm-admin` (or `python -m tgm_gateway.admin`): API keys straight against the gateway's database, for
an operator locked out of the API (every admin key lost or revoked). One shot: it reads MONGODB_URI (and
TGM_DATABASE_PREFIX) like the gateway, does one thing and exits; no NATS, no running gateway needed.

    tgm-admin create-key [--name NAME] [--role admin|operator|viewer] [--out FILE]
    tgm-admin rotate-key KEY_ID [--out FILE]      a new key with KEY_ID's name and role; KEY_ID revoked
    tgm-admin revoke-key KEY_ID
    tgm-admin list-keys

A new key is printed once on stdout, or with `--out` written to FILE (mode 0600, never overwritten) and
only its id printed. Running gateways see a new or revoked key within `TGM_GATEWAY_KEY_CACHE_SECONDS`
(1 s; an id looked up and not found is remembered as unknown for `TGM_GATEWAY_KEY_MISS_CACHE_SECONDS`).
Exit status: 0 done, 1 refused (unknown key, existing --out file), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tgm_contracts import Role, Service
from tgm_runtime import Conflict, DomainError, NotFound, RuntimeSettings, ServiceRuntime

from . import __version__
from .keys.cache import KeyCache
from .keys.limiter import FailedAuthLimiter
from .keys.service import ApiKeys, write_key_file
from .keys.store import KeyStore


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tgm-admin", description="API keys against the gateway's database.")
    sub = p.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-key", help="create a key (default: an admin key)")
    create.add_argument("--name", default="admin-recovery")
    create.add_argument("--role", default="admin", choices=[r.label for r in Role])
    create.add_argument("--out", type=Path, help="write the key to this file (0600) instead of printing it")
    rotate = sub.add_parser("rotate-key", help="replace a key: a new one with its name and role, it revoked")
    rotate.add_argument("key_id")
    rotate.add_argument("--out", type=Path)
    revoke = sub.add_parser("revoke-key", help="revoke a key")
    revoke.add_argument("key_id")
    sub.add_parser("list-keys", help="every key (id, name, role, created, revoked); never a secret")
    return p


def _deliver(key: str, key_id: str, out: Path | None) -> None:
    if out is None:
        print(key)
        return
    if not write_key_file(out, key):
        raise Conflict(f"{out} exists; not overwritten (the key {key_id} was created anyway)")
    print(f"key {key_id} written to {out}")


async def run(args: argparse.Namespace, settings: RuntimeSettings | None = None) -> int:
    runtime: ServiceRuntime = ServiceRuntime(
        Service.GATEWAY, __version__, settings=settings or RuntimeSettings()
    )
    await runtime.connect_database()
    keys = ApiKeys(KeyStore(runtime.db), KeyCache(1.0, 1.0, 10), FailedAuthLimiter(1.0, 1))
    try:
        if args.command == "create-key":
            key, view = await keys.create(args.name, Role.parse(args.role))
            _deliver(key, view["id"], args.out)
        elif args.command == "rotate-key":
            key, view = await keys.rotate(args.key_id)
            _deliver(key, view["id"], args.out)
            print(f"key {args.key_id} revoked", file=sys.stderr)
        elif args.command == "revoke-key":
            if not await keys.revoke(args.key_id):
                raise NotFound(f"no API key {args.key_id!r}")
            print(f"key {args.key_id} revoked")
        else:
            for view in await keys.list():
                print(json.dumps(view, ensure_ascii=False))
        return 0
    except DomainError as exc:
        print(f"tgm-admin: {exc.message}", file=sys.stderr)
        return 1
    finally:
        if runtime.mongo is not None:
            await runtime.mongo.close()


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(_parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
