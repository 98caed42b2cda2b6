"""Small, documented fixes at the edge between our libraries (applied once, on import of the runtime).

nats-py 2.16 (`PullSubscription.fetch`, since nats.py#934) raises a bare `asyncio.TimeoutError` when a
fetch's deadline runs out between its two pull requests, while FastStream 0.7's pull loop only swallows
`nats.errors.TimeoutError`. The bare one escapes, FastStream's supervisor logs an ERROR with a traceback
and restarts the consumer task (seen about every ten seconds under load). `nats.errors.TimeoutError`
subclasses `asyncio.TimeoutError`, so re-raising it as that changes nothing for any other caller.
Remove this when FastStream catches both (check with libs/runtime/tests/test_compat.py).
"""

from __future__ import annotations

import functools
from typing import Any

_PATCHED = "_tgm_timeout_patched"


def timeouts_as_nats_errors(original: Any) -> Any:
    """Wrap an async fetch so that every timeout it raises is a `nats.errors.TimeoutError`."""
    from nats import errors

    @functools.wraps(original)
    async def fetch(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        except errors.TimeoutError:
            raise
        except TimeoutError as exc:
            raise errors.TimeoutError from exc

    setattr(fetch, _PATCHED, True)
    return fetch


def patch() -> None:
    """Make PullSubscription.fetch raise `nats.errors.TimeoutError` for every timeout (idempotent)."""
    from nats.js.client import JetStreamContext

    cls = JetStreamContext.PullSubscription
    if not getattr(cls.fetch, _PATCHED, False):
        cls.fetch = timeouts_as_nats_errors(cls.fetch)  # type: ignore[method-assign]
