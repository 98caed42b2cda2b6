"""The body reader, the key cache and the token buckets on their own (issue 13, findings 3, 8, 9)."""

from __future__ import annotations

import asyncio
import json

import pytest
from tgm_gateway.api.body import BodyLimits, parse_object
from tgm_gateway.dispatch import Outcome
from tgm_gateway.keys.cache import KeyCache
from tgm_gateway.keys.limiter import FailedAuthLimiter, TokenBuckets

pytestmark = [pytest.mark.unit, pytest.mark.timeout(20)]

LIMITS = BodyLimits(max_bytes=1024 * 1024, max_depth=8)


def refusal(data: bytes | str) -> tuple[int, str, str]:
    out = parse_object(data, LIMITS)
    assert isinstance(out, Outcome), out
    err = out.reply["error"]
    return out.status, err["code"], err["message"]


def test_objects_and_the_empty_body_are_read() -> None:
    assert parse_object(b'{"a": [1, {"b": "\xc3\xa9"}]}', LIMITS) == {"a": [1, {"b": "é"}]}
    assert parse_object(b"", LIMITS) == {} and parse_object(" \n", LIMITS) == {}
    nested = "[" * 7 + "]" * 7
    assert parse_object(f'{{"x": {nested}}}', LIMITS) == {"x": json.loads(nested)}  # 8 levels


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"null", 422, "not null"),
        (b"[1, 2]", 422, "not an array"),
        (b'"text"', 422, "not a string"),
        (b"12", 422, "not a number"),
        ('{"a": 1}'.encode("utf-16"), 400, "not UTF-8"),
        ('{"a": 1}'.encode("utf-16-le"), 400, "not valid JSON"),
        (b"\xef\xbb\xbf{}", 400, "byte order mark"),
        (b'{"a": NaN}', 400, "not valid JSON"),
        (b'{"a": 1} x', 400, "not valid JSON"),
        (b"{not json", 400, "not valid JSON"),
        (b"[" * 10_000 + b"]" * 10_000, 400, "deeper than 8"),
        (b'{"a": ' + b"[" * 8 + b"]" * 8 + b"}", 400, "deeper than 8"),
        (b'{"a": "' + b"x" * (1024 * 1024) + b'"}', 413, "larger than 1048576 bytes"),
    ],
)
def test_everything_else_is_a_validation_envelope(body: bytes, status: int, words: str) -> None:
    got_status, code, message = refusal(body)
    assert (got_status, code) == (status, "VALIDATION_ERROR") and words in message, message


def test_a_text_frame_counts_its_utf8_bytes() -> None:
    text = '{"a": "' + "界" * (400 * 1024) + '"}'  # 400 Ki characters, 1.2 MB of UTF-8
    assert refusal(text)[0] == 413


async def test_the_key_cache_reads_a_bogus_id_once_per_window_and_stays_bounded() -> None:
    reads: list[str] = []

    async def read(key_id: str) -> None:
        reads.append(key_id)
        await asyncio.sleep(0)  # the other lookups arrive while this read is under way

    cache = KeyCache(hit_seconds=60, miss_seconds=60, max_entries=100)
    await asyncio.gather(*(cache.lookup("bogus", read) for _ in range(20)))  # concurrent: one read
    for _ in range(20):
        assert await cache.lookup("bogus", read) is None
    assert reads == ["bogus"]
    for i in range(1000):
        await cache.lookup(f"id{i}", read)
    assert len(cache) == 100 and len(reads) == 1001


async def test_a_found_key_is_read_again_after_its_window() -> None:
    reads = 0

    async def read(key_id: str) -> dict[str, str]:
        nonlocal reads
        reads += 1
        return {"_id": key_id}

    cache = KeyCache(hit_seconds=0.05, miss_seconds=60, max_entries=10)
    await cache.lookup("k", read)
    await cache.lookup("k", read)
    assert reads == 1
    await asyncio.sleep(0.06)
    await cache.lookup("k", read)
    assert reads == 2


def test_token_buckets_wait_without_taking_and_stay_bounded() -> None:
    failures = FailedAuthLimiter(rate=1.0, burst=2)
    assert failures.wait("1.2.3.4") == 0 and failures.wait("1.2.3.4") == 0  # looking takes nothing
    failures.take("1.2.3.4")
    failures.take("1.2.3.4")
    assert failures.wait("1.2.3.4") > 0 and failures.wait("5.6.7.8") == 0
    buckets = TokenBuckets(rate=1.0, burst=1, max_entries=50)
    for i in range(500):
        buckets.take(f"10.0.{i // 256}.{i % 256}")
    assert len(buckets) == 50
