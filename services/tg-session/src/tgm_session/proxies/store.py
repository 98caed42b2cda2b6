"""The history of IP binding changes (`ip_changes`)."""

from __future__ import annotations

from ..base_store import Repo

IP_CHANGES = "ip_changes"


class IpChangesRepo(Repo):
    name = IP_CHANGES
