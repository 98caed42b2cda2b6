"""PLACEHOLDER (being written): roles, scripts and scenarios."""

from __future__ import annotations

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import collaboration as cmd

from ..automation.ports import Call, Emit
from ..messaging.clock import Clock
from ..messaging.stores import MessagingStores
from .store import CollaborationStores


class RoleLibrary:
    def __init__(
        self, stores: CollaborationStores, messaging: MessagingStores, call: Call, emit: Emit, clock: Clock
    ) -> None:
        self.stores, self.messaging, self.call, self.emit, self.clock = stores, messaging, call, emit, clock

    async def save_role(self, req: cmd.SaveRoleRequest, by: str | None) -> cmd.RoleView:
        raise NotImplementedError

    async def delete_role(self, req: cmd.IdRequest, by: str | None) -> Ack:
        raise NotImplementedError

    async def roles(self, req: cmd.GetRolesRequest) -> Page[cmd.RoleView]:
        raise NotImplementedError

    async def save_script(self, req: cmd.SaveScriptRequest, by: str | None) -> cmd.ScriptView:
        raise NotImplementedError

    async def delete_script(self, req: cmd.IdRequest, by: str | None) -> Ack:
        raise NotImplementedError

    async def scripts(self, req: cmd.GetScriptsRequest) -> Page[cmd.ScriptView]:
        raise NotImplementedError

    async def save_scenario(self, req: cmd.SaveScenarioRequest, by: str | None) -> cmd.ScenarioView:
        raise NotImplementedError

    async def delete_scenario(self, req: cmd.IdRequest, by: str | None) -> Ack:
        raise NotImplementedError

    async def scenarios(self, req: cmd.GetScenariosRequest) -> Page[cmd.ScenarioView]:
        raise NotImplementedError
