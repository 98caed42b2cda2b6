"""The use cases of one tg-session replica, as one frozen dataclass built at every start by
`bootstrap.py`; handlers reach them typed as `ctx.app.<use case>`."""

from __future__ import annotations

from dataclasses import dataclass

from tgm_runtime import ServiceRuntime

from .accounts.service import Accounts
from .bots.service import BotFleet
from .credentials.scrape import Scrapes
from .credentials.service import CredentialPool
from .extraction.service import Extractions
from .fleet.health import Health
from .fleet.inbound import Inbound
from .fleet.leases import LeaseStore
from .fleet.pool import AccountPool
from .fleet.send import Sender
from .groups.service import GroupOps
from .login.qr import QrLogins
from .login.service import CodeLogin
from .metrics import SessionMetrics
from .ports import TelegramConnector
from .proxies.service import Proxies
from .settings import SessionSettings
from .store import Repos


@dataclass(frozen=True)
class SessionApp:
    #: This replica's settings; the lease TTL is the lease bucket's own when that differs.
    settings: SessionSettings
    repos: Repos
    metrics: SessionMetrics
    connector: TelegramConnector
    leases: LeaseStore
    health: Health
    inbound: Inbound
    pool: AccountPool
    sender: Sender
    credentials: CredentialPool
    accounts: Accounts
    login: CodeLogin
    qr: QrLogins
    proxies: Proxies
    groups: GroupOps
    extractions: Extractions
    scrapes: Scrapes
    bots: BotFleet


Runtime = ServiceRuntime[SessionApp]
