"""Ads: ad campaigns that post templates into groups on a schedule (the 9 `ads` commands).

- `service.py`: `AdService`, the commands and the runner round (`tick`, on `runtime.every`): due
  runs become group-post jobs through messaging's `QueueService` (paced, exactly once by key).
- `schedule.py`: when the next run is (once / daily / interval / cron, in a timezone); pure.
- `store.py`: `AdStore` (ad campaigns, their runs and per-post records).
- `handlers.py`: the commands, thin.
"""
