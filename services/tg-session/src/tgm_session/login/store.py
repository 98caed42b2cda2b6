"""Logins in progress: code logins (`code_logins`, one step at a time across replicas) and QR logins (`qr_logins`)."""

from __future__ import annotations

from ..base_store import Doc, LockedRepo, Repo

CODE_LOGINS = "code_logins"
QR_LOGINS = "qr_logins"


class CodeLoginsRepo(LockedRepo):
    name = CODE_LOGINS

    async def replace(self, ident: str, doc: Doc) -> None:
        """A new login replaces whatever this account had pending."""
        await self.col.replace_one({"_id": ident}, doc, upsert=True)


class QrLoginsRepo(Repo):
    name = QR_LOGINS
