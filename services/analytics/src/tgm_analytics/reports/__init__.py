"""Analytics domain `reports`: `export-report` (a report now as CSV, XLSX or JSON, or a stored one by
`reportId`) and `schedule-report` (cron or interval schedules with stored reports and deliveries).

- service.py: `ReportService` (`AnalyticsApp.reports`): export, schedules, the scheduler's `tick`
  (a `runtime.every` job) and report runs (`runtime.spawn` for `run`);
- builders.py: each report kind's figures (from `ReportSources`: the stats, alerts and performance
  use cases), table and headline;
- timing.py: cron and interval timing, relative windows;
- adapters.py: deliveries (webhook over HTTP, telegram through tg-session's account call `send`);
- store.py: `report_schedules` and `reports`;
- handlers.py: the two commands.

Environment (settings.py): `TGM_ANALYTICS_SCHEDULER_SECONDS` (15; 0 turns the scheduler off),
`TGM_ANALYTICS_REPORTS_KEEP` (20 per schedule), `TGM_ANALYTICS_WEBHOOK_TIMEOUT_SECONDS` (15),
`TGM_ANALYTICS_TELEGRAM_TIMEOUT_SECONDS` (30).
"""
