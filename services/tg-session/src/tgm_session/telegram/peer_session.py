"""A `StringSession` that remembers peers the way `fleet/peers.py` needs: rows kept by id (so a
changed access hash or username replaces the old row instead of sitting beside it, as in Telethon's
`MemorySession` set), looked up by id, username, phone or name through dicts (the set is scanned
on every lookup), bounded (least recently seen evicted first), and every row seen noted for the
next `take_seen()` so the fleet can save it.

Telethon hands every RPC answer and every update's users/chats to `process_entities`
(`client/users.py`, `_preprocess_updates`); `get_input_entity` falls back to `get_entity_rows_*`
when the client's in-memory `_mb_entity_cache` does not know a peer, which is the case for
everything loaded here (a new connection starts with an empty cache)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from telethon import utils
from telethon.sessions import StringSession
from telethon.tl.types import PeerChannel, PeerChat, PeerUser

from ..fleet.peer_store import MAX_ROWS

Row = tuple[int, int, str | None, str | None, str | None]


class PeerSession(StringSession):
    def __init__(self, string: str | None = None, *, max_rows: int = MAX_ROWS) -> None:
        super().__init__(string)
        self.max_rows = max_rows
        #: marked id -> row, least recently seen first.
        self._rows: OrderedDict[int, Row] = OrderedDict()
        self._by_username: dict[str, int] = {}
        self._by_phone: dict[str, int] = {}
        self._by_name: dict[str, int] = {}
        #: Rows seen since the last `take_seen()`.
        self._seen: dict[int, Row] = {}

    # --- what Telethon calls ---------------------------------------------------------------------

    def process_entities(self, tlo: Any) -> None:
        for row in self._entities_to_rows(tlo):
            self._put(row)
            self._seen[row[0]] = row

    def get_entity_rows_by_phone(self, phone: Any) -> tuple[int, int] | None:
        return self._pair(self._by_phone.get(phone)) if isinstance(phone, str) else None

    def get_entity_rows_by_username(self, username: Any) -> tuple[int, int] | None:
        if not isinstance(username, str):
            return None
        return self._pair(self._by_username.get(username.lower()))

    def get_entity_rows_by_name(self, name: Any) -> tuple[int, int] | None:
        return self._pair(self._by_name.get(name)) if isinstance(name, str) else None

    def get_entity_rows_by_id(self, id: Any, exact: bool = True) -> tuple[int, int] | None:
        if not isinstance(id, int):
            return None
        if exact:
            return self._pair(id)
        for marked in (
            utils.get_peer_id(PeerUser(id)),
            utils.get_peer_id(PeerChat(id)),
            utils.get_peer_id(PeerChannel(id)),
        ):
            found = self._pair(marked)
            if found is not None:
                return found
        return None

    # --- what the adapter calls --------------------------------------------------------------------

    def load(self, rows: Iterable[Row]) -> int:
        """Saved rows, least recently seen first (not noted as seen: they are saved already)."""
        for row in rows:
            self._put(row)
        return len(self._rows)

    def take_seen(self) -> list[Row]:
        seen, self._seen = list(self._seen.values()), {}
        return seen

    def __len__(self) -> int:
        return len(self._rows)

    # --- internals -----------------------------------------------------------------------------------

    def _pair(self, marked: int | None) -> tuple[int, int] | None:
        if marked is None:
            return None
        row = self._rows.get(marked)
        return (row[0], row[1]) if row is not None else None

    def _put(self, row: Row) -> None:
        pid = row[0]
        old = self._rows.pop(pid, None)
        if old is not None:
            self._unindex(old)
        self._rows[pid] = row
        _, _, username, phone, name = row
        if username:
            self._by_username[username] = pid
        if phone:
            self._by_phone[phone] = pid
        if name:
            self._by_name[name] = pid
        while len(self._rows) > self.max_rows:
            _, evicted = self._rows.popitem(last=False)
            self._unindex(evicted)

    def _unindex(self, row: Row) -> None:
        pid, _, username, phone, name = row
        for index, key in ((self._by_username, username), (self._by_phone, phone), (self._by_name, name)):
            if key and index.get(key) == pid:
                del index[key]
