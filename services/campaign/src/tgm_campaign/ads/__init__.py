"""Ads: ad campaigns that post templates into groups on a schedule (the 9 `ads` commands).

- `service.py`: `AdService`, the commands and the runner round (`tick`, on `runtime.every`): due
  runs become group-post jobs through messaging's `QueueService` (paced, exactly once by key).
- `schedule.py`: when the next run is (once / daily / interval / cron, in a timezone); pure.
- `replies.py`: `AdReplies`, the group messages that reply to a post (once each), for the stats.
- `store.py`: `AdStore` (ad campaigns as an automation `StatusStore`, their runs, the replies; the
  posts read through messaging's `JobStore`).
- `handlers.py`: the commands, thin.
"""
