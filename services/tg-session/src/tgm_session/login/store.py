"""Logins in progress: code logins (`code_logins`, one step at a time across replicas) and QR logins (`qr_logins`)."""

from __future__ import annotations

from ..base_store import LockedRepo, Repo

CODE_LOGINS = "code_logins"
QR_LOGINS = "qr_logins"


class CodeLoginsRepo(LockedRepo):
    name = CODE_LOGINS


class QrLoginsRepo(Repo):
    name = QR_LOGINS
