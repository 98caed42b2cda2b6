"""Use cases of templates: add, save (create or update), delete, toggle, list, with previews."""

from __future__ import annotations

from typing import Any

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import messaging as messaging_cmd
from tgm_contracts.events_campaign import EntityChanged
from tgm_contracts.models.campaign import TemplateSpec, TemplateView
from tgm_runtime import Conflict, Invalid, NotFound
from tgm_runtime.routes import answers

from .clock import Clock, utc
from .job_events import JobEvents
from .stores import MessagingStores
from .template_store import StaleTemplate, TemplateNameTaken, template_view
from .templates import TemplateError, preview


def _fields(spec: TemplateSpec) -> dict[str, Any]:
    return {
        "name": spec.name.strip(),
        "category": spec.category,
        "content": spec.content,
        "variables": [v.model_dump(mode="json") for v in spec.variables],
        "is_active": spec.is_active,
    }


class TemplateService:
    def __init__(self, stores: MessagingStores, events: JobEvents, clock: Clock) -> None:
        self.stores = stores
        self.events = events
        self.clock = clock

    def _preview(self, req: messaging_cmd.AddTemplateRequest | messaging_cmd.SaveChatTemplateRequest) -> Any:
        try:
            return preview(req.content, req.variables, req.preview)
        except TemplateError as exc:
            raise Invalid(f"content: {exc}", {"field": "content", "position": exc.position}) from None

    @answers(messaging_cmd.AddTemplate, principal=True)
    async def add(
        self, req: messaging_cmd.AddTemplateRequest, by: str | None
    ) -> messaging_cmd.TemplateSaveResult:
        shown = self._preview(req)
        if req.dry_run:
            return messaging_cmd.TemplateSaveResult(template=None, preview=shown)
        try:
            doc = await self.stores.templates.create(_fields(req), utc(self.clock()))
        except TemplateNameTaken:
            raise Conflict(f"a template named {req.name!r} already exists") from None
        await self._changed(doc["_id"], "created", by)
        return messaging_cmd.TemplateSaveResult(template=template_view(doc), preview=shown)

    @answers(messaging_cmd.SaveChatTemplate, principal=True)
    async def save(
        self, req: messaging_cmd.SaveChatTemplateRequest, by: str | None
    ) -> messaging_cmd.TemplateSaveResult:
        shown = self._preview(req)
        if req.id is not None and await self.stores.templates.get(req.id) is None:
            raise NotFound(f"template {req.id} does not exist")
        if req.dry_run:
            return messaging_cmd.TemplateSaveResult(template=None, preview=shown)
        now = utc(self.clock())
        try:
            if req.id is None:
                doc = await self.stores.templates.create(_fields(req), now)
                action = "created"
            else:
                found = await self.stores.templates.update(req.id, _fields(req), now, req.expected_updated_at)
                if found is None:
                    raise NotFound(f"template {req.id} does not exist")
                doc, action = found, "updated"
        except TemplateNameTaken:
            raise Conflict(f"a template named {req.name!r} already exists") from None
        except StaleTemplate:
            raise Conflict(
                f"template {req.id} changed since {req.expected_updated_at}; read it again"
            ) from None
        await self._changed(doc["_id"], action, by)
        return messaging_cmd.TemplateSaveResult(template=template_view(doc), preview=shown)

    @answers(messaging_cmd.RemoveTemplate, principal=True)
    @answers(messaging_cmd.DeleteChatTemplate, principal=True)
    async def delete(self, req: messaging_cmd.TemplateIdRequest, by: str | None) -> Ack:
        if not await self.stores.templates.delete(req.id):
            raise NotFound(f"template {req.id} does not exist")
        await self._changed(req.id, "deleted", by)
        return Ack(affected=1)

    @answers(messaging_cmd.ToggleTemplateStatus, principal=True)
    async def toggle(self, req: messaging_cmd.ToggleTemplateStatusRequest, by: str | None) -> TemplateView:
        doc = await self.stores.templates.set_active(req.id, req.is_active, utc(self.clock()))
        if doc is None:
            raise NotFound(f"template {req.id} does not exist")
        await self._changed(req.id, "updated", by)
        return template_view(doc)

    @answers(messaging_cmd.GetChatTemplates)
    async def list(self, req: messaging_cmd.GetChatTemplatesRequest) -> Page[TemplateView]:
        docs = await self.stores.templates.find(
            category=req.category, active_only=req.active_only, search=req.search, ids=req.ids
        )
        return Page[TemplateView](items=[template_view(d) for d in docs], total=len(docs))

    async def _changed(self, template_id: str, action: str, by: str | None) -> None:
        await self.events.emit(EntityChanged(entity="template", entity_id=template_id, action=action, by=by))
