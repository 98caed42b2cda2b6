"""The send path's records (`sends`, keyed by job id) and the peers each account learnt (`peers`, in
`peer_store.py`)."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from ..base_store import Doc, Repo
from .peer_store import PEERS, PeersRepo

__all__ = ["PEERS", "SENDS", "PeersRepo", "SendsRepo"]

SENDS = "sends"


class SendsRepo(Repo):
    name = SENDS

    async def claim(self, job_id: str, doc: Doc) -> Doc | None:
        """Record that a job is being sent; the existing record when the job id is known already."""
        try:
            await self.col.insert_one({"_id": job_id, **doc})
        except DuplicateKeyError:
            return await self.get(job_id)
        return None

    async def record(self, job_id: str, fields: Doc) -> None:
        await self.col.update_one({"_id": job_id}, {"$set": fields}, upsert=True)

    async def sent(self, account_id: str, peer_id: int, message_id: int) -> bool:
        """A send of ours delivered this message (catch-up tells our echoes from typed-elsewhere)."""
        doc = await self.col.find_one(
            {"account_id": account_id, "peer_id": peer_id, "message_id": message_id, "state": "sent"},
            {"_id": 1},
        )
        return doc is not None
