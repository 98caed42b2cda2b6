"""The fetch-timeout fix between nats-py 2.16 and FastStream 0.7 (see tgm_runtime/compat.py)."""

from __future__ import annotations

import asyncio
import inspect

import pytest
import tgm_runtime  # noqa: F401  (applies the patch)
from nats import errors
from nats.js.client import JetStreamContext
from tgm_runtime.compat import timeouts_as_nats_errors

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


async def test_a_bare_asyncio_timeout_becomes_the_nats_timeout_faststream_swallows() -> None:
    async def racy_fetch(self: object, batch: int = 1, timeout: float = 1.0) -> list[object]:
        raise TimeoutError  # what nats-py 2.16 raises when the deadline runs out mid-fetch

    fetch = timeouts_as_nats_errors(racy_fetch)
    with pytest.raises(errors.TimeoutError) as caught:
        await fetch(object(), batch=16, timeout=0.1)
    assert isinstance(caught.value, asyncio.TimeoutError)  # still one for every other caller


async def test_other_outcomes_pass_through_unchanged() -> None:
    async def ok(self: object) -> list[int]:
        return [1]

    async def nats_timeout(self: object) -> list[int]:
        raise errors.TimeoutError

    assert await timeouts_as_nats_errors(ok)(object()) == [1]
    with pytest.raises(errors.TimeoutError):
        await timeouts_as_nats_errors(nats_timeout)(object())


def test_the_runtime_patches_pull_fetch_and_faststream_still_needs_it() -> None:
    assert getattr(JetStreamContext.PullSubscription.fetch, "_tgm_timeout_patched", False)
    # FastStream's pull loop suppresses nats' TimeoutError only; if it ever catches the bare one too,
    # this fails and compat.py can go.
    from faststream.nats.subscriber.usecases import stream_pull_subscriber as pull

    source = inspect.getsource(pull.PullStreamSubscriber._consume_pull)
    assert "suppress(TimeoutError" in source and pull.TimeoutError is errors.TimeoutError
