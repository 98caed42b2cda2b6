"""Automation: watch groups, match keywords, fire trigger rules, run campaigns (the 30 `automation`
commands campaign owns).

Where things are (each use case a class, each collection one store):

- `matcher.py`: every active keyword set compiled into one matcher (Aho-Corasick for literal
  keywords, bounded regexes, fuzzy windows, CJK folding). Pure: no I/O.
- `keyword_service.py` / `keyword_store.py`: keyword sets and their keywords; the matcher cache that
  every replica rebuilds when a set changes.
- `group_service.py` / `group_store.py`: monitored groups (resolve, join, bind sets, pause).
- `monitoring_service.py` / `monitoring_store.py`: start/stop with the configuration and access
  check; publishes the watched chats to tg-session through the `tgm_monitored_chats` KV bucket.
- `rule_service.py` / `rule_store.py` / `engine.py`: trigger rules, and the pure decision of which
  rules fire on a message (priority, sources, conditions, cooldown, daily limit, delay).
- `service.py` / `firing_store.py`: the inbound path: a group message, processed once however many
  listeners saw it, matched, decided, and its actions run (replies only through messaging's paced
  queue, leads only through crm's use case).
- `campaign_service.py` / `campaign_store.py`: campaigns (audience, steps, batched resumable
  enqueueing, stats).
- `status_store.py`: `StatusStore`, a collection of status documents moved compare-and-set (the
  campaigns' and ads' ad campaigns' base), and the breakdown helpers their stats share.
- `oneclick_service.py` / `system_status.py`: one-click start/stop and the system status.
- `handlers.py`: the 30 commands and the consumers, thin.
- `store.py`: every store of the domain from one database (`AutomationStores`).
"""
