"""How far each of this service's durable consumers is behind its stream (issue 17: NATS panels).

Every service samples its own consumers of the declared streams (`tgm_contracts.streams.STREAMS`)
every `SAMPLE_SECONDS` and exports them as gauges, so the dashboard shows consumer lag and
redeliveries in every deployment, with or without a NATS exporter (Kubernetes runs none):

- `tgm_consumer_pending{stream,consumer}`: messages of the stream the consumer has not been given yet
  (`num_pending`): the backlog;
- `tgm_consumer_ack_pending{stream,consumer}`: given but not acknowledged yet (in work, or lost by a
  replica that died and waiting for its ack wait);
- `tgm_consumer_redelivered{stream,consumer}`: given more than once and not acknowledged yet
  (`num_redelivered`): handlers failing or too slow for their ack wait.

A consumer is this service's when its durable name starts with the service's prefix
(`tg_session_…`, `campaign_…`): the names `Runtime` gives every consumer it declares. One JetStream
API call per stream and round (`consumers_info` lists a stream's consumers with their state). A
consumer that disappears leaves the gauges (its series are removed), and a sampling failure is
counted like any background failure and tried again next round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry, Gauge

SAMPLE_SECONDS = 15.0


class ConsumerLag:
    def __init__(
        self, registry: CollectorRegistry, prefix: str, js: Callable[[], Any | None], streams: Iterable[str]
    ) -> None:
        self.prefix = prefix
        self._js = js
        self._streams = tuple(streams)
        labels = ["stream", "consumer"]
        self.pending = Gauge(
            "tgm_consumer_pending",
            "Messages of the stream not yet delivered to this service's durable consumer",
            labels,
            registry=registry,
        )
        self.ack_pending = Gauge(
            "tgm_consumer_ack_pending",
            "Messages delivered to this service's durable consumer and not acknowledged yet",
            labels,
            registry=registry,
        )
        self.redelivered = Gauge(
            "tgm_consumer_redelivered",
            "Messages delivered more than once to this service's durable consumer, not acknowledged yet",
            labels,
            registry=registry,
        )
        self._seen: set[tuple[str, str]] = set()

    async def sample(self) -> None:
        js = self._js()
        if js is None:  # no JetStream connection (the in-memory test broker)
            return
        seen: set[tuple[str, str]] = set()
        for stream in self._streams:
            try:
                infos = await js.consumers_info(stream)
            except NotFoundError:
                continue  # not created yet (a service started before the stream's owner)
            for info in infos:
                name = info.name or ""
                if not name.startswith(self.prefix):
                    continue
                key = (stream, name)
                seen.add(key)
                self.pending.labels(*key).set(info.num_pending or 0)
                self.ack_pending.labels(*key).set(info.num_ack_pending or 0)
                self.redelivered.labels(*key).set(info.num_redelivered or 0)
        for key in self._seen - seen:
            for gauge in (self.pending, self.ack_pending, self.redelivered):
                gauge.remove(*key)
        self._seen = seen
