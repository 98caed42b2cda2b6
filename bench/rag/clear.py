"""`clear-knowledge` of a large knowledge base, through the ai service's runtime on its database
(issue 13, finding 5: ~9,000 chunks answered 504 when the clear deleted chunk by chunk).

For each size: N chunks (with 384-dimension vectors, as a dense embedder stores them) in two scopes,
then the time of
- `delete_many({})` over the same collection, the old full clear's cost (the baseline);
- `clear-knowledge {}` (the full clear: a new generation, the old one dropped in the background),
  and how long the background drop took after the reply;
- `clear-knowledge {"scope": …}` of half of them (the index-backed delete).

    .venv/bin/python bench/rag/clear.py                 # 9,000 and 17,000 chunks
    .venv/bin/python bench/rag/clear.py --chunks 2000   # quicker

Figures are quoted in bench/rag/README.md (raw output: clear-last-run.txt); nothing is asserted here.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from tgm_ai.bootstrap import build
from tgm_contracts.commands import ai as C
from tgm_runtime.testing import runtime_client
from tgm_testing.procs import wait_for_async
from tgm_testing.servers import MongoServer

SCOPES = ("default", "other")


def chunks(n: int, document_ids: tuple[str, str]) -> list[dict[str, Any]]:
    rnd = random.Random(n)
    out = []
    for i in range(n):
        half = i % 2
        words = " ".join(f"w{rnd.randrange(5000)}" for _ in range(60))
        out.append(
            {
                "_id": f"kn_{i:08d}",
                "scope": SCOPES[half],
                "type": "document",
                "document_id": document_ids[half],
                "content": words,
                "dedupe": f"d{i}",
                "created_at": time.time(),
                "vector": [rnd.random() for _ in range(384)],
                "vector_model": "bench",
            }
        )
    return out


async def fill(client: Any, n: int) -> None:
    store = client.runtime.app.index.store
    await store.revision()
    ids = ("doc_a", "doc_b")
    for scope, doc_id in zip(SCOPES, ids, strict=True):
        await store.insert_document({"_id": doc_id, "scope": scope, "state": "ready", "created_at": 0})
    docs = chunks(n, ids)
    for i in range(0, len(docs), 1000):
        await store.insert_many(docs[i : i + 1000])
    await store.bump()
    await client.runtime.app.index.load()  # the replica loads its index outside the timings


async def timed(coro: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await coro
    return time.perf_counter() - started, result


async def one_size(uri: str, n: int) -> None:
    async with runtime_client(build(), uri) as client:
        store = client.runtime.app.index.store
        await fill(client, n)
        baseline, res = await timed(store.items.delete_many({}))
        await store.documents.delete_many({})
        print(
            f"{n:>6} chunks  delete_many (old full clear)   {baseline * 1000:8.0f} ms  ({res.deleted_count})"
        )

        await fill(client, n)
        reply_s, reply = await timed(client.call(C.ClearKnowledge, {"confirm": True}))
        assert reply["ok"], reply
        drop_s, _ = await timed(_dropped(store))
        print(
            f"{n:>6} chunks  clear-knowledge {{}}             {reply_s * 1000:8.0f} ms  "
            f"(affected {reply['data']['affected']}; old generation dropped {drop_s * 1000:.0f} ms later)"
        )

        await fill(client, n)
        scoped_s, reply = await timed(client.call(C.ClearKnowledge, {"confirm": True, "scope": "default"}))
        assert reply["ok"], reply
        print(
            f"{n:>6} chunks  clear-knowledge {{scope}} (half) {scoped_s * 1000:8.0f} ms  "
            f"(affected {reply['data']['affected']})"
        )


async def _dropped(store: Any) -> None:
    async def done() -> bool:
        return not (await store.meta.find_one({"_id": "rev"}) or {}).get("retired")

    await wait_for_async(done, timeout=120, interval=0.02)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, action="append", help="sizes (default 9000 and 17000)")
    sizes = ap.parse_args().chunks or [9000, 17000]
    root = Path(tempfile.mkdtemp(prefix="bench-clear-"))
    server = MongoServer(root / "db", log_path=root / "server.log")
    server.start()
    try:
        for n in sizes:
            await one_size(server.uri, n)
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
