"""Write deploy/k8s/nats/accounts.conf from the one declaration of the bus permissions
(tgm_contracts.bus). Run by `make schemas`; `--check` exits 1 when the committed file is stale."""

from __future__ import annotations

import sys
from pathlib import Path

from tgm_contracts.bus import render_accounts_conf

ACCOUNTS_CONF = Path(__file__).resolve().parent / "accounts.conf"


def main(argv: list[str]) -> int:
    text = render_accounts_conf()
    if "--check" in argv:
        if ACCOUNTS_CONF.read_text() != text:
            print(f"{ACCOUNTS_CONF} is stale: run `make schemas`", file=sys.stderr)
            return 1
        return 0
    ACCOUNTS_CONF.write_text(text)
    print(f"wrote {ACCOUNTS_CONF}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
