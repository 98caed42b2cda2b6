"""The number of copies JetStream keeps (`TGM_JS_REPLICAS`) applied to streams that already exist.

A stream, KV bucket (stream `KV_<bucket>`) or object store (stream `OBJ_<bucket>`) is created with the
configured replicas; one created earlier with another number (a deployment that ran with 1 before the
cluster got 3 nodes) is updated to it on start, its configuration otherwise unchanged. NATS moves the
data itself. An update the cluster refuses (fewer nodes than replicas) is logged and the service runs on
with the copies it has: better than not starting. `ReplicatedBroker` applies both to every bucket a
service opens through its broker.
"""

from __future__ import annotations

import logging
from typing import Any

from faststream.nats import NatsBroker

log = logging.getLogger("tgm.runtime.replicas")


async def ensure_replicas(js: Any, stream: str, replicas: int) -> bool:
    """Set `stream`'s replicas to `replicas` when they differ; True when it has them afterwards."""
    info = await js.stream_info(stream)
    if info.config.num_replicas == replicas:
        return True
    config = info.config
    before, config.num_replicas = config.num_replicas, replicas
    try:
        await js.update_stream(config)
    except Exception as exc:
        log.error("stream %s keeps %s copies: changing it to %s failed: %s", stream, before, replicas, exc)
        return False
    log.info("stream %s: replicas %s -> %s", stream, before, replicas)
    return True


class ReplicatedBroker(NatsBroker):
    """The runtime's FastStream broker: a KV bucket or object store opened through it with `declare`
    (by the runtime, or by a service itself, as tg-session opens its lease bucket) gets `js_replicas`
    copies unless the caller names a number. FastStream's own default is 1: a bucket a service made
    that way lived on one node of a 3-node cluster, and killing that node took the account leases
    with it. One that already exists with another number is raised first, so the declaration that
    follows has the same configuration as the bucket and is accepted; checked once per bucket until
    `replicas_checked` is cleared (the runtime clears it at every start)."""

    js_replicas: int = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replicas_checked: set[str] = set()

    async def key_value(self, bucket: str, **kwargs: Any) -> Any:
        kwargs.setdefault("replicas", self.js_replicas)
        if kwargs.get("declare", True):
            await self._raise_existing(f"KV_{bucket}", kwargs["replicas"])
        return await super().key_value(bucket, **kwargs)

    async def object_storage(self, bucket: str, **kwargs: Any) -> Any:
        kwargs.setdefault("replicas", self.js_replicas)
        if kwargs.get("declare", True):
            await self._raise_existing(f"OBJ_{bucket}", kwargs["replicas"])
        return await super().object_storage(bucket, **kwargs)

    async def _raise_existing(self, stream: str, replicas: int) -> None:
        from nats.js.errors import NotFoundError

        if stream in self.replicas_checked:
            return
        try:
            await ensure_replicas(self.connection.jetstream(), stream, replicas)
        except NotFoundError:
            pass  # a new bucket: the declaration creates it with `replicas`
        self.replicas_checked.add(stream)
