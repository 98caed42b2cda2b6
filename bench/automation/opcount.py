"""Campaign (`python -m tgm_campaign`) with every database command it sends counted, for
`decision.py --count-ops`.

A pymongo `CommandListener` registered before campaign builds its client sees each command as it is
sent (one per round trip: a `bulk_write` is one `update`), on the thread and in the coroutine that
sends it. Each is tallied by (command, collection, where): `where` is the chain of campaign's own
frames that sent it, innermost first, as `module.function` (a coroutine run by `asyncio.gather`
is its own task, so its chain starts at the coroutine gathered).

SIGUSR1 starts a window (the bench sends it when the load starts), SIGUSR2 ends it and writes the
window's tallies as JSON to `TGM_BENCH_OPS_FILE`. Measuring, not shipping: the listener walks the
stack on every command, so a counted run is not a latency run.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
from collections import Counter
from typing import Any

from pymongo import monitoring

PACKAGE = "tgm_campaign"
DEPTH = 6


def where() -> str:
    """Campaign's frames on the stack (innermost first), e.g. `automation.firing_store.claim <
    automation.service._rules`."""
    out: list[str] = []
    frame: Any = sys._getframe(2)
    while frame is not None and len(out) < DEPTH:
        module = frame.f_globals.get("__name__", "")
        if module.startswith(PACKAGE + "."):
            out.append(f"{module[len(PACKAGE) + 1 :]}.{frame.f_code.co_name}")
        frame = frame.f_back
    return " < ".join(out) or "(outside campaign)"


class Tally(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.micros: Counter[tuple[str, str, str]] = Counter()  # round trips' durations, summed
        self.sent: dict[int, tuple[str, str, str]] = {}  # request id -> its key
        self.on = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self.on:
            return
        name = event.command_name
        target = event.command.get(name)
        collection = target if isinstance(target, str) else ""
        key = (name, collection, where())
        self.counts[key] += 1
        self.sent[event.request_id] = key

    def _done(self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent) -> None:
        key = self.sent.pop(event.request_id, None)
        if key is not None:
            self.micros[key] += event.duration_micros

    succeeded = _done
    failed = _done


def main() -> None:
    tally = Tally()
    monitoring.register(tally)
    out = os.environ["TGM_BENCH_OPS_FILE"]

    def start(*_: Any) -> None:
        tally.counts.clear()
        tally.micros.clear()
        tally.sent.clear()
        tally.on = True

    def stop(*_: Any) -> None:
        tally.on = False
        rows = [
            {"command": c, "collection": coll, "where": w, "n": n, "ms": tally.micros[(c, coll, w)] / 1000}
            for (c, coll, w), n in tally.counts.most_common()
        ]
        with open(out, "w") as f:
            json.dump(rows, f)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = ["tgm_campaign"]
    runpy.run_module(PACKAGE, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
