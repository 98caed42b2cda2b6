"""Every store of the automation domain, made from one database (no use case touches a collection
itself). The documents, in snake_case, ids are strings:

`keyword_sets` (keyword_store.py)
    {_id "ks_…", name, name_key (casefolded, unique), description, match_mode, fuzzy_threshold,
     keywords: [{id "kw_…", keyword, match_type|None (None: the set's match_mode), case_sensitive,
                 match_count, last_matched_at}],
     exclude_keywords: [str], is_active, total_matches, created_at, updated_at, rev}
    plus one `automation_meta` doc {_id "keyword_sets", version} bumped on every change: replicas
    compare it to rebuild their matcher.
`groups` (group_store.py; messaging's read-only GroupStore reads `_id`, `chat_id`, `username`, `title`)
    {_id "grp_…", ref_key (canonical ChatRef, unique), url, username, chat_id, title,
     keyword_set_ids, listener_account_ids|None, auto_join, is_active, paused, pause_reason,
     status (pending|ok|needs_join|cannot_join|error), status_detail, member_account_ids,
     member_count, match_count, counted (the newest message keys in match_count), last_message_at,
     last_match_at, created_at, updated_at}
`monitoring` (monitoring_store.py)
    {_id "state", active, started_at, stopped_at, group_ids|None, by, revision}
`trigger_rules` (rule_store.py)
    the TriggerRuleSpec fields in snake_case (actions as dicts), plus _id "tr_…", trigger_count,
    success_count, failure_count, last_triggered_at, created_at, updated_at
`automation_seen`, `rule_users`, `rule_days`, `firings`, `member_joins` (firing_store.py)
    the inbound path's once-only records: a message claimed by one listener's event, per-user
    cooldown and once-per-user, per-day counts, one firing per (rule, message), recent joins.
`campaigns`, `campaign_targets` (campaign_store.py)
    a campaign's definition, status and counters; one target doc per (campaign, recipient) with its
    step, job ids and outcome (what makes enqueueing resumable and never duplicated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..messaging.stores import StoreSet
from .campaign_store import CampaignStore
from .firing_store import FiringStore
from .group_store import MonitoredGroupStore
from .keyword_store import KeywordSetStore
from .monitoring_store import MonitoringStore
from .rule_store import TriggerRuleStore


@dataclass(frozen=True)
class AutomationStores(StoreSet):
    keyword_sets: KeywordSetStore
    groups: MonitoredGroupStore
    monitoring: MonitoringStore
    rules: TriggerRuleStore
    firings: FiringStore
    campaigns: CampaignStore


#: Indexes of the domain's collections, created by migration 3 (each store module declares its own).
def indexes() -> dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]]:
    from . import campaign_store, firing_store, group_store, keyword_store, monitoring_store, rule_store

    out: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {}
    for module in (keyword_store, group_store, monitoring_store, rule_store, firing_store, campaign_store):
        for collection, items in module.INDEXES.items():
            out.setdefault(collection, []).extend(items)
    return out
