"""Analytics domain `stats`: every event on TGM_EVENTS folded into facts, and the six statistics.

- facts.py: which event becomes which counted fact (pure);
- service.py: `Ingest` (`AnalyticsApp.ingest`), the consumer: facts and projections per event;
- store.py: the facts and projection collections and every write into them; the retention sweep;
- queries.py: `StatsQueries` (`AnalyticsApp.stats`): get-dashboard-stats, get-analytics,
  get-message-stats, get-user-stats, get-group-stats, get-conversion-stats, from those facts;
- timeline.py: hour/day buckets in a time zone, reply detection;
- handlers.py: the commands and the durable consumer `analytics_stats`.

Retention: facts (and leads, job links) older than `analytics.eventRetentionDays` are deleted by a
sweep at start and every `retention.SWEEP_SECONDS`; after each the facts' span is looked up again
(it decides how long windows are read, queries.SCAN_FRACTION).
"""
