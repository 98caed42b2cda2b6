"""Domain metrics of tg-session on the runtime's registry. Labels are closed vocabularies (states,
results, categories, reasons): never a phone, session, hash or proxy."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from tgm_contracts.models.session import AccountState


class SessionMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r: Any = registry if registry is not None else CollectorRegistry()
        self.accounts = Gauge(
            "tgm_session_accounts",
            "Accounts in the fleet by health state (fleet-wide)",
            ["state"],
            registry=r,
        )
        self.held = Gauge("tgm_session_held_accounts", "Accounts whose lease this replica holds", registry=r)
        self.connected = Gauge(
            "tgm_session_connected_accounts", "Held accounts with a live Telegram connection", registry=r
        )

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=r)

        self.logins = counter(
            "tgm_session_logins_total", "Login steps by method and result", "method", "result"
        )
        self.sends = counter("tgm_session_sends_total", "Sends by result", "result")
        self.send_seconds = Histogram("tgm_session_send_seconds", "Time of a send to Telegram", registry=r)
        self.flood_waits = counter(
            "tgm_session_flood_waits_total", "FLOOD_WAIT answers by category", "category"
        )
        self.flood_wait_seconds = counter(
            "tgm_session_flood_wait_seconds_total", "Seconds Telegram asked to wait", "category"
        )
        self.lease_moves = counter(
            "tgm_session_lease_moves_total", "Leases taken or given up by reason", "reason"
        )
        self.reconnects = counter("tgm_session_reconnects_total", "Reconnect attempts by result", "result")
        self.state_changes = counter(
            "tgm_session_state_changes_total", "Health state transitions by new state", "state"
        )
        self.inbound = counter("tgm_session_inbound_total", "Inbound updates turned into events", "kind")
        # Inbound automation side (fleet/watched.py, fleet/outbox.py).
        self.unwatched = counter(
            "tgm_session_inbound_unwatched_total", "Group updates not published: chat not watched", "kind"
        )
        self.watched_chats = Gauge(
            "tgm_session_watched_chats", "Chats automation watches (0 while monitoring is off)", registry=r
        )
        self.outbox_depth = Gauge(
            "tgm_session_outbox_depth",
            "Inbound events kept while NATS refused them, not yet re-published",
            registry=r,
        )
        self.outbox_republished = counter(
            "tgm_session_outbox_republished_total", "Kept inbound events published once NATS took them"
        )
        self.outbox_dropped = counter(
            "tgm_session_outbox_dropped_total", "Kept inbound events given up, by reason", "reason"
        )
        self.connect_seconds = Histogram(
            "tgm_session_connect_seconds", "Time to connect and verify one account", registry=r
        )

    def set_fleet(self, by_state: dict[str, int]) -> None:
        for state in AccountState:
            self.accounts.labels(state.value).set(by_state.get(state.value, 0))
