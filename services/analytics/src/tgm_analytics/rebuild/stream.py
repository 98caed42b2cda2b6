"""The edge to TGM_EVENTS for a replay: every event published from a time, up to the stream's last
message when the replay began, parsed into its contract class (an ordered consumer of its own, so the
durable `analytics_stats` consumer is neither moved nor paused)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from tgm_contracts import streams, subjects
from tgm_contracts.events import EVENTS, Event
from tgm_runtime import Unavailable

log = logging.getLogger("tgm.analytics.rebuild")

#: How long the replay waits for the next message before it takes the stream as read to its end.
NEXT_TIMEOUT_SECONDS = 10.0


class EventReplay:
    def __init__(self, js: Any) -> None:
        self.js = js

    async def span(self) -> tuple[int, int]:
        """The stream's (first, last) sequence now; `first` is 0 when nothing is kept."""
        try:
            info = await self.js.stream_info(streams.EVENTS_STREAM.name)
        except Exception as exc:  # the edge: JetStream away (or not there) is the caller's UNAVAILABLE
            log.warning("rebuild: %s not readable: %s", streams.EVENTS_STREAM.name, exc)
            raise Unavailable(
                f"the event stream {streams.EVENTS_STREAM.name} did not answer; try again"
            ) from exc
        return int(info.state.first_seq or 0), int(info.state.last_seq or 0)

    async def events(self, since: datetime | None, last_seq: int) -> AsyncIterator[tuple[int, Event]]:
        """(stream sequence, event) for every declared event published at or after `since` and at or
        before `last_seq`; undeclared subjects and malformed bodies are skipped, as the consumer does."""
        from nats.js.api import ConsumerConfig, DeliverPolicy

        if last_seq <= 0:
            return
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # the database hands back naive UTC times
        config = (
            ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since)
            if since is not None
            else ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        )
        sub = await self.js.subscribe(
            subjects.EVENTS_FILTER, stream=streams.EVENTS_STREAM.name, ordered_consumer=True, config=config
        )
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=NEXT_TIMEOUT_SECONDS)
                except TimeoutError:
                    # Nothing was published at or after `since` (or the rest was deleted by age).
                    return
                seq = int(msg.metadata.sequence.stream)
                if seq > last_seq:
                    return
                cls = EVENTS.get(msg.subject)
                if cls is not None:
                    try:
                        yield seq, cls.model_validate(json.loads(msg.data))
                    except (ValueError, ValidationError) as exc:
                        log.warning("replay skips a malformed %s event: %s", cls.NAME, exc)
                if seq >= last_seq:
                    return
        finally:
            await sub.unsubscribe()
