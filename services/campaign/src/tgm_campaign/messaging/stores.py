"""Every store of the messaging domain, made from one database: what the use cases read and write
through (no use case touches a collection itself); and `StoreSet`, how a domain's set of stores is
made."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Self

from pymongo.asynchronous.database import AsyncDatabase

from ..crm.store import LeadStore
from .compliance_store import ComplianceStore
from .group_store import GroupStore
from .history_store import HistoryStore
from .lease_store import LeaseStore
from .pacing_store import PacingStore
from .pause_store import PauseStore
from .store import JobStore
from .template_store import TemplateStore


@dataclass(frozen=True)
class StoreSet:
    """A frozen dataclass whose fields are stores: `of(db)` makes each field's store from the one
    database (every store takes just the database), so a domain's set names each store once."""

    @classmethod
    def of(cls, db: AsyncDatabase[Any]) -> Self:
        store_classes = typing.get_type_hints(cls)
        return cls(**{f.name: store_classes[f.name](db) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class MessagingStores(StoreSet):
    jobs: JobStore
    pacing: PacingStore
    compliance: ComplianceStore
    history: HistoryStore
    templates: TemplateStore
    pauses: PauseStore
    leases: LeaseStore
    #: The CRM's store: it owns the `leads` shape; the queue marks deliveries and reads assignments.
    leads: LeadStore
    groups: GroupStore
