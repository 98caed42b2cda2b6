"""The number of copies JetStream keeps (`TGM_JS_REPLICAS`) applied to streams that already exist.

A stream, KV bucket (stream `KV_<bucket>`) or object store (stream `OBJ_<bucket>`) is created with the
configured replicas; one created earlier with another number (a deployment that ran with 1 before the
cluster got 3 nodes) is updated to it on start, its configuration otherwise unchanged. NATS moves the
data itself. An update the cluster refuses (fewer nodes than replicas) is logged and the service runs on
with the copies it has: better than not starting.
"""

from __future__ import annotations

import logging
from typing import Any

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
