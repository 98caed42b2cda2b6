"""The groups the fleet created (`created_groups`)."""

from __future__ import annotations

from ..base_store import Repo

CREATED_GROUPS = "created_groups"


class CreatedGroupsRepo(Repo):
    name = CREATED_GROUPS
