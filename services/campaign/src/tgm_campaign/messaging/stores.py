"""Every store of the messaging domain, made from one database: what the use cases read and write
through (no use case touches a collection itself)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
class MessagingStores:
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

    @classmethod
    def of(cls, db: AsyncDatabase[Any]) -> MessagingStores:
        return cls(
            jobs=JobStore(db),
            pacing=PacingStore(db),
            compliance=ComplianceStore(db),
            history=HistoryStore(db),
            templates=TemplateStore(db),
            pauses=PauseStore(db),
            leases=LeaseStore(db),
            leads=LeadStore(db),
            groups=GroupStore(db),
        )
