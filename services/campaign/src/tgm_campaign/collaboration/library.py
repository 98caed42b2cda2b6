"""Roles, scripts and scenarios (`RoleLibrary`): the 9 library commands, and the reads runs and
swarms build on (`get_role`, `get_script`, `get_scenario`, `roles_by_account`, `count_run`).

Decisions (the next engineer's reference):

- Names are unique per kind (case-folded, trimmed): a save without `id` retried by a client answers
  CONFLICT instead of creating a second copy.
- **Roles.** A bound account must be in the fleet: tg-session's `describe-accounts` is asked when the
  account is new or changed (NOT_FOUND `boundAccountId` when it is not; its own error, e.g.
  UNAVAILABLE, when tg-session cannot answer: an unchecked binding is never stored). A role an
  unfinished run or an active swarm uses keeps its account (CONFLICT naming them). One active
  role per account: CONFLICT naming the other role (checked first, and the partial unique index
  `active_account` settles racing saves). Deactivating a role keeps its bindings; scenarios and
  runs check `is_active` themselves.
- **Scripts.** Every line's slot is one of the script's slots; `text` lines and a `new_group`'s
  texts parse as messaging templates (variables, spintax; a typo such as `{first name}` is refused);
  `template` lines name an existing, active template; a line carries only its type's content; stage
  triggers are consistent (keywords only on `keyword` triggers, non-blank and distinct; a timeout
  only on `message`/`keyword`, `onTimeout` only with a timeout); branches go to a later stage, their
  keywords distinct across the stage's branches; a success condition has keywords or minReplies; a script holds at most `MAX_LINES` lines and `MAX_TEXT` characters
  of content (a document stays far below the database's 16 MB).
- **Scenarios.** The script exists; bindings name only the script's slots, every *speaking* slot
  (one with a line) is bound (a slot with no line may stay unbound), each to an existing role with a
  bound account, no role or account twice, and the role's type is the slot's `roleType` when the
  slot asks for one. An active scenario needs an active script and active roles (CONFLICT otherwise).
  A `lead_stage` start on an `existing_group` needs the group (`chat`): nobody is there to give it.
  One active scenario per lead stage (CONFLICT naming the other): a lead entering a stage gets one
  conversation, not one per scenario.
- **Deletes in use are CONFLICT, naming the users** (`details`: `scenarioIds`, `runIds`,
  `swarmIds`): a role bound by a scenario or used by an unfinished run or swarm; a script used by a
  scenario, a run or a swarm; a scenario with unfinished runs. Runs and swarms are asked through
  `RunStore.active_using` / `SwarmStore.active_using`.
- **Delete vs a racing save.** A delete flags the document `deleting` (its start time), checks its
  users, then deletes (or unflags on CONFLICT); a flag older than `DELETE_WINDOW` is a delete that
  died half-way and is ignored. A scenario save writes first, then re-reads its script and roles:
  one gone or flagged undoes the save (CONFLICT). So a scenario never ends up binding a deleted
  role or script, whatever the interleaving.
- Runs and swarms close the same window with `vanished(role_ids, script_id, scenario_id)` after
  writing their document (the get_* reads answer a flagged document: its delete may still fail).
- **Runs keep their version.** `get_script` answers the script as stored now: a run copies what it
  needs at start (the contract: "runs in progress keep their version"); `count_run` bumps
  `runs`/`completed` of the script and `runsTotal` of the scenario. `runsActive` is counted from the
  run store when a scenario is viewed.
- Events: `EntityChanged` (`role`, `script`, `scenario`) after every create, update and delete.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import collaboration as cmd
from tgm_contracts.events_campaign import EntityChanged
from tgm_contracts.rpc_session import DescribeAccounts, DescribeAccountsRequest
from tgm_runtime import Conflict, Invalid, NotFound
from tgm_runtime.routes import answers

from ..automation.ports import Call, Emit
from ..messaging import templates
from ..messaging.clock import Clock, epoch, utc
from ..messaging.stores import MessagingStores
from .library_store import AccountTaken, LibraryStore, NameTaken
from .store import CollaborationStores

log = logging.getLogger("tgm.campaign.collaboration")

#: lines in one script, all stages together
MAX_LINES = 500
#: characters of text and prompts in one script
MAX_TEXT = 500_000
MAX_KEYWORD = 200
CALL_TIMEOUT = 5.0
#: seconds a delete's `deleting` flag holds (a delete takes milliseconds; an older flag is a crash)
DELETE_WINDOW = 60.0

Kind = Literal["role", "script", "scenario"]
_COLLECTION = {"role": "roles", "script": "scripts", "scenario": "scenarios"}


def _fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A stored document as a view's input: every spec field as stored (fields the contract gains
    later come along), `_id` as `id`; store-only fields (`name_key`, `deleting`, …) are ignored."""
    return {**{k: v for k, v in doc.items() if v is not None or k == "bound_account_id"}, "id": doc["_id"]}


def role_view(doc: Mapping[str, Any], scenario_ids: Iterable[str] = ()) -> cmd.RoleView:
    return cmd.RoleView.model_validate({**_fields(doc), "scenario_ids": list(scenario_ids)})


def script_view(doc: Mapping[str, Any]) -> cmd.ScriptView:
    return cmd.ScriptView.model_validate(_fields(doc))


def scenario_view(doc: Mapping[str, Any], runs_active: int = 0) -> cmd.ScenarioView:
    return cmd.ScenarioView.model_validate({**_fields(doc), "runs_active": runs_active})


def _spec_fields(
    req: cmd.SaveRoleRequest | cmd.SaveScriptRequest | cmd.SaveScenarioRequest,
) -> dict[str, Any]:
    """What a save stores of its request: the spec as stored fields, the name trimmed."""
    return {**req.model_dump(mode="json", by_alias=False, exclude={"id"}), "name": req.name.strip()}


def _blank(value: str | None) -> bool:
    return value is not None and not value.strip()


def _check_keywords(words: Iterable[str], field: str) -> None:
    """Non-blank, at most MAX_KEYWORD characters, distinct (case-folded)."""
    seen: set[str] = set()
    for k, word in enumerate(words):
        if not word.strip() or len(word) > MAX_KEYWORD:
            raise Invalid(f"{field}[{k}]: 1 to {MAX_KEYWORD} characters", {"field": f"{field}[{k}]"})
        folded = word.strip().casefold()
        if folded in seen:
            raise Invalid(f"{field}[{k}]: {word!r} twice", {"field": f"{field}[{k}]"})
        seen.add(folded)


def _check_template_text(text: str, field: str) -> None:
    try:
        templates.parse(text)
    except templates.TemplateError as exc:
        raise Invalid(f"{field}: {exc}", {"field": field}) from None


class RoleLibrary:
    def __init__(
        self, stores: CollaborationStores, messaging: MessagingStores, call: Call, emit: Emit, clock: Clock
    ) -> None:
        self.stores, self.messaging, self.call, self.emit, self.clock = stores, messaging, call, emit, clock

    @property
    def _lib(self) -> LibraryStore:
        return self.stores.library

    # --- reads for runs and swarms ------------------------------------------------------------------

    async def get_role(self, role_id: str) -> cmd.RoleView:
        doc = await self._lib.get("roles", role_id)
        if doc is None:
            raise NotFound(f"role {role_id} does not exist", {"roleId": role_id})
        bound = await self._lib.scenarios_binding([role_id])
        return role_view(doc, [s["_id"] for s in bound[role_id]])

    async def get_script(self, script_id: str) -> cmd.ScriptView:
        """The script as stored now (a run copies it at start to keep its version)."""
        doc = await self._lib.get("scripts", script_id)
        if doc is None:
            raise NotFound(f"script {script_id} does not exist", {"scriptId": script_id})
        return script_view(doc)

    async def get_scenario(self, scenario_id: str) -> cmd.ScenarioView:
        doc = await self._lib.get("scenarios", scenario_id)
        if doc is None:
            raise NotFound(f"scenario {scenario_id} does not exist", {"scenarioId": scenario_id})
        return await self._scenario_view(doc)

    async def roles_by_account(self, account_ids: Iterable[str]) -> dict[str, cmd.RoleView]:
        """account id -> its role (the active one; an inactive one only when it has no active role).
        Accounts with no role are left out."""
        ids = [a for a in dict.fromkeys(account_ids) if isinstance(a, str)]
        docs = await self._lib.roles_of_accounts(ids)
        bound = await self._lib.scenarios_binding([d["_id"] for d in docs])
        out: dict[str, cmd.RoleView] = {}
        for doc in docs:  # active ones come first
            account = doc.get("bound_account_id")
            if account and account not in out:
                out[account] = role_view(doc, [s["_id"] for s in bound.get(doc["_id"], [])])
        return out

    async def count_run(self, script_id: str, scenario_id: str | None, *, completed: bool = False) -> None:
        """Runs call this when a run starts (`completed` False) and when one completes (True)."""
        await self._lib.count_run(script_id, scenario_id, completed=completed)

    # --- roles --------------------------------------------------------------------------------------

    @answers(cmd.SaveRole, principal=True)
    async def save_role(self, req: cmd.SaveRoleRequest, by: str | None) -> cmd.RoleView:
        if not req.name.strip():
            raise Invalid("name: blank", {"field": "name"})
        for field, value in (
            ("personality.description", req.personality.description),
            ("personality.speakingStyle", req.personality.speaking_style),
            ("personality.background", req.personality.background),
            ("aiConfig.customPrompt", req.ai_config.custom_prompt),
        ):
            if _blank(value):
                raise Invalid(f"{field}: blank (leave it out instead)", {"field": field})
        for i, item in enumerate(req.personality.traits):
            if not item.strip() or len(item) > 100:
                raise Invalid(
                    f"personality.traits[{i}]: 1 to 100 characters", {"field": f"personality.traits[{i}]"}
                )
        for i, item in enumerate(req.responsibilities):
            if not item.strip() or len(item) > 300:
                raise Invalid(
                    f"responsibilities[{i}]: 1 to 300 characters", {"field": f"responsibilities[{i}]"}
                )
        if (
            req.ai_config.use_global_ai is False
            and req.ai_config.custom_prompt is None
            and (req.ai_config.strategy_id is None)
        ):
            raise Invalid(
                "aiConfig: useGlobalAi false needs customPrompt or strategyId",
                {"field": "aiConfig.customPrompt"},
            )
        previous = await self._previous("role", req.id)
        account = req.bound_account_id
        if previous is not None and previous.get("bound_account_id") != account:
            runs = await self.stores.runs.active_using("role", previous["_id"])
            swarms = await self.stores.swarms.active_using("role", previous["_id"])
            if runs or swarms:
                named = "; ".join(
                    f"{label} {', '.join(ids)}"
                    for label, ids in (("unfinished run(s)", runs), ("active swarm(s)", swarms))
                    if ids
                )
                raise Conflict(
                    f"role {previous['_id']} speaks in {named}: its account cannot change until they end",
                    {
                        "field": "boundAccountId",
                        **({"runIds": runs} if runs else {}),
                        **({"swarmIds": swarms} if swarms else {}),
                    },
                )
        if account is not None:
            if not account.strip():
                raise Invalid("boundAccountId: blank", {"field": "boundAccountId"})
            if previous is None or previous.get("bound_account_id") != account:
                await self._check_account(account)
            if req.is_active:
                other = await self._lib.active_role_of(account, req.id)
                if other is not None:
                    raise self._account_taken(account, other)
        try:
            doc, action = await self._write("role", previous, req.id, _spec_fields(req))
        except AccountTaken:
            other = await self._lib.active_role_of(account or "", req.id)
            raise self._account_taken(account or "", other) from None
        await self._changed("role", doc["_id"], action, by)
        bound = await self._lib.scenarios_binding([doc["_id"]])
        return role_view(doc, [s["_id"] for s in bound[doc["_id"]]])

    @answers(cmd.DeleteRole, principal=True)
    async def delete_role(self, req: cmd.IdRequest, by: str | None) -> Ack:
        async def users() -> dict[str, list[str]]:
            bound = (await self._lib.scenarios_binding([req.id]))[req.id]
            return {
                "scenarioIds": [s["_id"] for s in bound],
                "runIds": await self.stores.runs.active_using("role", req.id),
                "swarmIds": await self.stores.swarms.active_using("role", req.id),
            }

        return await self._delete("role", req.id, users, by)

    @answers(cmd.GetRoles)
    async def roles(self, req: cmd.GetRolesRequest) -> Page[cmd.RoleView]:
        docs = await self._lib.find_roles(
            type=req.type, account_id=req.account_id, active_only=req.active_only
        )
        bound = await self._lib.scenarios_binding([d["_id"] for d in docs])
        views = [role_view(d, [s["_id"] for s in bound.get(d["_id"], [])]) for d in docs]
        return Page[cmd.RoleView](items=views, total=len(views))

    async def _check_account(self, account_id: str) -> None:
        # tg-session's own error (UNAVAILABLE, TIMEOUT) propagates: a binding is never stored unchecked
        briefs = await self.call(
            DescribeAccounts, DescribeAccountsRequest(account_ids=[account_id]), CALL_TIMEOUT
        )
        if account_id in briefs.missing or not any(a.id == account_id for a in briefs.accounts):
            raise NotFound(
                f"no such account: {account_id}", {"field": "boundAccountId", "missing": [account_id]}
            )

    @staticmethod
    def _account_taken(account_id: str, other: Mapping[str, Any] | None) -> Conflict:
        who = f"role {other['_id']} ({other.get('name')!r})" if other else "another active role"
        return Conflict(
            f"account {account_id} already speaks as {who}; deactivate or rebind that role first",
            {"field": "boundAccountId", "roleId": other["_id"] if other else None},
        )

    # --- scripts ------------------------------------------------------------------------------------

    @answers(cmd.SaveScript, principal=True)
    async def save_script(self, req: cmd.SaveScriptRequest, by: str | None) -> cmd.ScriptView:
        await self._validate_script(req)
        previous = await self._previous("script", req.id)
        doc, action = await self._write("script", previous, req.id, _spec_fields(req))
        await self._changed("script", doc["_id"], action, by)
        return script_view(doc)

    @answers(cmd.DeleteScript, principal=True)
    async def delete_script(self, req: cmd.IdRequest, by: str | None) -> Ack:
        async def users() -> dict[str, list[str]]:
            return {
                "scenarioIds": [s["_id"] for s in await self._lib.scenarios_using_script(req.id)],
                "runIds": await self.stores.runs.active_using("script", req.id),
                "swarmIds": await self.stores.swarms.active_using("script", req.id),
            }

        return await self._delete("script", req.id, users, by)

    @answers(cmd.GetScripts)
    async def scripts(self, req: cmd.GetScriptsRequest) -> Page[cmd.ScriptView]:
        docs = await self._lib.find_scripts(active_only=req.active_only, search=req.search)
        views = [script_view(d) for d in docs]
        return Page[cmd.ScriptView](items=views, total=len(views))

    async def _validate_script(self, spec: cmd.ScriptSpec) -> None:
        if not spec.name.strip():
            raise Invalid("name: blank", {"field": "name"})
        if _blank(spec.description):
            raise Invalid("description: blank (leave it out instead)", {"field": "description"})
        slots = {s.key: s for s in spec.roles}
        if len(slots) != len(spec.roles):
            raise Invalid("role slot keys must be unique", {"field": "roles"})
        for i, slot in enumerate(spec.roles):
            if _blank(slot.description):
                raise Invalid(f"roles[{i}].description: blank", {"field": f"roles[{i}].description"})
        lines = 0
        chars = 0
        template_ids: dict[str, str] = {}
        for i, stage in enumerate(spec.stages):
            at = f"stages[{i}]"
            if _blank(stage.name):
                raise Invalid(f"{at}.name: blank", {"field": f"{at}.name"})
            trig = stage.trigger
            if trig.type != "keyword" and trig.keywords:
                raise Invalid(
                    f"{at}.trigger.keywords: only a 'keyword' trigger has keywords",
                    {"field": f"{at}.trigger.keywords"},
                )
            _check_keywords(trig.keywords, f"{at}.trigger.keywords")
            if trig.timeout_seconds is not None and trig.type not in ("message", "keyword"):
                raise Invalid(
                    f"{at}.trigger.timeoutSeconds: only a 'message' or 'keyword' trigger waits",
                    {"field": f"{at}.trigger.timeoutSeconds"},
                )
            if trig.on_timeout != "stop" and trig.timeout_seconds is None:
                raise Invalid(
                    f"{at}.trigger.onTimeout: needs timeoutSeconds", {"field": f"{at}.trigger.onTimeout"}
                )
            for k, branch in enumerate(stage.branches):
                _check_keywords(branch.keywords, f"{at}.branches[{k}].keywords")
                if not i < branch.goto_stage < len(spec.stages):
                    raise Invalid(
                        f"{at}.branches[{k}].gotoStage: a later stage (at most {len(spec.stages) - 1})",
                        {"field": f"{at}.branches[{k}].gotoStage"},
                    )
            words = [w.strip().casefold() for b in stage.branches for w in b.keywords]
            if len(words) != len(set(words)):
                raise Invalid(
                    f"{at}.branches: one keyword leads to two branches", {"field": f"{at}.branches"}
                )
            for j, line in enumerate(stage.lines):
                where = f"{at}.lines[{j}]"
                lines += 1
                if line.slot not in slots:
                    raise Invalid(f"{where}.slot: {line.slot!r} is not in roles", {"field": f"{where}.slot"})
                extra = {
                    "text": [("templateId", line.template_id), ("prompt", line.prompt)],
                    "template": [("text", line.text), ("prompt", line.prompt)],
                    "ai_generate": [("text", line.text), ("templateId", line.template_id)],
                }[line.type]
                for name, value in extra:
                    if value is not None:
                        raise Invalid(
                            f"{where}.{name}: a {line.type!r} line has no {name}",
                            {"field": f"{where}.{name}"},
                        )
                if line.type == "text":
                    assert line.text is not None  # the contract's validator
                    if not line.text.strip():
                        raise Invalid(f"{where}.text: blank", {"field": f"{where}.text"})
                    _check_template_text(line.text, f"{where}.text")
                    chars += len(line.text)
                elif line.type == "ai_generate":
                    assert line.prompt is not None
                    if not line.prompt.strip():
                        raise Invalid(f"{where}.prompt: blank", {"field": f"{where}.prompt"})
                    chars += len(line.prompt)
                elif line.template_id is not None:
                    template_ids.setdefault(line.template_id, f"{where}.templateId")
        if spec.success is not None:
            _check_keywords(spec.success.keywords, "success.keywords")
            if not spec.success.keywords and spec.success.min_replies is None:
                raise Invalid("success: give keywords or minReplies", {"field": "success"})
        if lines > MAX_LINES:
            raise Invalid(f"stages: {lines} lines; a script holds at most {MAX_LINES}", {"field": "stages"})
        if chars > MAX_TEXT:
            raise Invalid(f"stages: {chars} characters of text; at most {MAX_TEXT}", {"field": "stages"})
        for template_id, field in template_ids.items():
            tpl = await self.messaging.templates.get(template_id)
            if tpl is None:
                raise NotFound(
                    f"template {template_id} does not exist", {"field": field, "missing": [template_id]}
                )
            if not tpl.get("is_active", True):
                raise Conflict(f"template {template_id} is inactive; activate it first", {"field": field})

    # --- scenarios ----------------------------------------------------------------------------------

    @answers(cmd.SaveScenario, principal=True)
    async def save_scenario(self, req: cmd.SaveScenarioRequest, by: str | None) -> cmd.ScenarioView:
        await self._validate_scenario(req, req.id)
        previous = await self._previous("scenario", req.id)
        fields = {**_spec_fields(req), "role_ids": sorted(set(req.role_bindings.values()))}
        doc, action = await self._write("scenario", previous, req.id, fields)
        # a delete of the script or a role may have checked its users before this write: re-read
        gone = await self.vanished(fields["role_ids"], req.script_id)
        if gone:
            if previous is None:
                await self._lib.delete("scenarios", doc["_id"])
            else:
                await self._lib.restore("scenarios", previous)
            raise Conflict(f"{gone} is being deleted; the scenario was not saved", {"field": "roleBindings"})
        await self._changed("scenario", doc["_id"], action, by)
        return await self._scenario_view(doc)

    @answers(cmd.DeleteScenario, principal=True)
    async def delete_scenario(self, req: cmd.IdRequest, by: str | None) -> Ack:
        async def users() -> dict[str, list[str]]:
            return {"runIds": await self.stores.runs.active_using("scenario", req.id)}

        return await self._delete("scenario", req.id, users, by)

    @answers(cmd.GetScenarios)
    async def scenarios(self, req: cmd.GetScenariosRequest) -> Page[cmd.ScenarioView]:
        docs = await self._lib.find_scenarios(active_only=req.active_only, script_id=req.script_id)
        active = await self.stores.runs.active_per_scenario([d["_id"] for d in docs])
        views = [scenario_view(d, active.get(d["_id"], 0)) for d in docs]
        return Page[cmd.ScenarioView](items=views, total=len(views))

    async def _scenario_view(self, doc: Mapping[str, Any]) -> cmd.ScenarioView:
        active = await self.stores.runs.active_using("scenario", doc["_id"])
        return scenario_view(doc, len(active))

    async def _validate_scenario(self, spec: cmd.ScenarioSpec, scenario_id: str | None = None) -> None:
        if not spec.name.strip():
            raise Invalid("name: blank", {"field": "name"})
        if _blank(spec.description):
            raise Invalid("description: blank (leave it out instead)", {"field": "description"})
        script = await self._lib.get("scripts", spec.script_id)
        if script is None or self._gone(script):
            raise NotFound(f"script {spec.script_id} does not exist", {"field": "scriptId"})
        if spec.is_active and not script.get("is_active", True):
            raise Conflict(f"script {spec.script_id} is inactive; activate it first", {"field": "scriptId"})
        slots = {s["key"]: s for s in script.get("roles") or []}
        speaking = {line["slot"] for stage in script.get("stages") or [] for line in stage.get("lines") or []}
        unknown = [k for k in spec.role_bindings if k not in slots]
        if unknown:
            raise Invalid(
                f"roleBindings: {', '.join(unknown)} not a slot of script {spec.script_id}"
                f" (its slots: {', '.join(slots)})",
                {"field": "roleBindings", "unknown": unknown},
            )
        unbound = sorted(s for s in speaking if s not in spec.role_bindings)
        if unbound:
            raise Invalid(
                f"roleBindings: slot(s) {', '.join(unbound)} speak in the script but are not bound",
                {"field": "roleBindings", "unbound": unbound},
            )
        role_ids = list(spec.role_bindings.values())
        twice = sorted({r for r in role_ids if role_ids.count(r) > 1})
        if twice:
            raise Invalid(
                f"roleBindings: role(s) {', '.join(twice)} bound to two slots", {"field": "roleBindings"}
            )
        roles = await self._lib.get_many("roles", role_ids)
        accounts: dict[str, str] = {}
        for slot, role_id in spec.role_bindings.items():
            field = f"roleBindings.{slot}"
            role = roles.get(role_id)
            if role is None or self._gone(role):
                raise NotFound(f"role {role_id} does not exist", {"field": field, "missing": [role_id]})
            account = role.get("bound_account_id")
            if not account:
                raise Invalid(
                    f"{field}: role {role_id} has no account bound; bind one first", {"field": field}
                )
            if account in accounts:
                raise Invalid(
                    f"{field}: role {role_id} and slot {accounts[account]}'s role share account {account}",
                    {"field": field},
                )
            accounts[account] = slot
            wanted = slots[slot].get("role_type")
            if wanted and role.get("type") != wanted:
                raise Invalid(
                    f"{field}: slot {slot} wants a {wanted!r} role; role {role_id} is {role.get('type')!r}",
                    {"field": field},
                )
            if spec.is_active and not role.get("is_active", True):
                raise Conflict(f"role {role_id} is inactive; activate it first", {"field": field})
        if spec.where == "existing_group" and spec.start_on == "lead_stage" and spec.chat is None:
            raise Invalid(
                "chat: a scenario started on a lead stage in an existing group needs the group",
                {"field": "chat"},
            )
        if spec.where == "new_group" and spec.chat is not None:
            raise Invalid("chat: only for where 'existing_group'", {"field": "chat"})
        if len(set(spec.lead_stages)) != len(spec.lead_stages):
            raise Invalid("leadStages: a stage twice", {"field": "leadStages"})
        if spec.start_on != "lead_stage" and spec.lead_stages:
            raise Invalid("leadStages: only for startOn 'lead_stage'", {"field": "leadStages"})
        if spec.is_active and spec.start_on == "lead_stage":
            other = await self._lib.active_on_stages([str(s) for s in spec.lead_stages], scenario_id)
            if other:
                shared = sorted(set(other[0].get("lead_stages") or []) & {str(s) for s in spec.lead_stages})
                raise Conflict(
                    f"scenario {other[0]['_id']} ({other[0].get('name')!r}) already starts on lead stage(s)"
                    f" {', '.join(shared)}; a lead gets one conversation",
                    {"field": "leadStages", "scenarioId": other[0]["_id"]},
                )
        if spec.new_group is not None:
            group = spec.new_group
            if not group.title.strip():
                raise Invalid("newGroup.title: blank", {"field": "newGroup.title"})
            _check_template_text(group.title, "newGroup.title")
            if _blank(group.about):
                raise Invalid("newGroup.about: blank", {"field": "newGroup.about"})
            if group.invite_message is not None:
                if not group.invite_message.strip():
                    raise Invalid("newGroup.inviteMessage: blank", {"field": "newGroup.inviteMessage"})
                _check_template_text(group.invite_message, "newGroup.inviteMessage")

    async def vanished(
        self, role_ids: Iterable[str] = (), script_id: str | None = None, scenario_id: str | None = None
    ) -> str | None:
        """What of these is gone or being deleted ("role role_…"), None when all are there. A run or
        swarm calls it after writing its document (which `active_using` then finds): a delete that
        checked its users before that write is caught here, so nothing runs on a deleted role."""
        if scenario_id is not None:
            scenario = await self._lib.get("scenarios", scenario_id)
            if self._gone(scenario):
                return f"scenario {scenario_id}"
        if script_id is not None:
            script = await self._lib.get("scripts", script_id)
            if self._gone(script):
                return f"script {script_id}"
        ids = list(dict.fromkeys(role_ids))
        roles = await self._lib.get_many("roles", ids)
        for rid in ids:
            if self._gone(roles.get(rid)):
                return f"role {rid}"
        return None

    def _gone(self, doc: Mapping[str, Any] | None) -> bool:
        """Missing, or a delete is checking its users (a flag older than DELETE_WINDOW is a delete
        that died half-way: ignored, so a crash never leaves a role unusable)."""
        if doc is None:
            return True
        flagged = doc.get("deleting")
        if not isinstance(flagged, datetime):
            return False
        return self.clock() - epoch(flagged) < DELETE_WINDOW

    # --- shared ---------------------------------------------------------------------------------------

    async def _previous(self, kind: Kind, doc_id: str | None) -> dict[str, Any] | None:
        """The stored document a save with `id` updates (NOT_FOUND when there is none); None for a
        save without one (a create)."""
        if doc_id is None:
            return None
        previous = await self._lib.get(_COLLECTION[kind], doc_id)
        if previous is None:
            raise NotFound(f"{kind} {doc_id} does not exist", {"field": "id"})
        return previous

    async def _write(
        self, kind: Kind, previous: Mapping[str, Any] | None, doc_id: str | None, fields: dict[str, Any]
    ) -> tuple[dict[str, Any], Literal["created", "updated"]]:
        """Create the document, or replace `previous`; a name another one of the kind has is CONFLICT
        (a role's `AccountTaken` is its caller's to answer)."""
        collection = _COLLECTION[kind]
        now = utc(self.clock())
        try:
            if previous is None:
                return await self._lib.create(collection, fields, now), "created"
            found = await self._lib.replace(collection, previous["_id"], fields, now)
        except NameTaken:
            raise Conflict(f"a {kind} named {fields['name']!r} already exists", {"field": "name"}) from None
        if found is None:
            raise NotFound(f"{kind} {doc_id} does not exist", {"field": "id"})
        return found, "updated"

    async def _delete(self, kind: Kind, doc_id: str, users: Any, by: str | None) -> Ack:
        collection = _COLLECTION[kind]
        if not await self._lib.mark_deleting(collection, doc_id, utc(self.clock())):
            raise NotFound(f"{kind} {doc_id} does not exist")
        try:
            found: dict[str, list[str]] = await users()
        except BaseException:
            await self._lib.mark_deleting(collection, doc_id, None)
            raise
        if any(found.values()):
            await self._lib.mark_deleting(collection, doc_id, None)
            named = "; ".join(
                f"{label} {', '.join(ids)}"
                for label, ids in (
                    ("scenario(s)", found.get("scenarioIds", [])),
                    ("unfinished run(s)", found.get("runIds", [])),
                    ("active swarm(s)", found.get("swarmIds", [])),
                )
                if ids
            )
            raise Conflict(f"{kind} {doc_id} is in use by {named}", {k: v for k, v in found.items() if v})
        if not await self._lib.delete(collection, doc_id):
            raise NotFound(f"{kind} {doc_id} does not exist")
        await self._changed(kind, doc_id, "deleted", by)
        return Ack(affected=1)

    async def _changed(
        self, kind: Kind, doc_id: str, action: Literal["created", "updated", "deleted"], by: str | None
    ) -> None:
        await self.emit(EntityChanged(entity=kind, entity_id=doc_id, action=action, by=by))
