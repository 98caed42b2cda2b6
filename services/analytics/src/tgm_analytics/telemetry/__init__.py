"""Analytics domain `telemetry`: the logs and performance samples every service ships.

- service.py: `TelemetryIntake`, what arrives on TGM_TELEMETRY, routed to the logs or the samples;
- logs.py: `LogService` (`AnalyticsApp.logs`): get-logs, export-logs, clear-logs;
- perf.py: `PerformanceService` (`AnalyticsApp.performance`): get-performance, merged histograms
  (histogram.py);
- store.py: the `logs` and `perf_samples` collections, stored under the id each process gave a record
  or sample, so a redelivery changes nothing; the retention sweep;
- handlers.py: the commands and the durable consumer `analytics_telemetry`.

Retention: logs older than `analytics.logRetentionDays` and samples older than that (at most
`PERF_RETENTION_DAYS`) are deleted at start and every `retention.SWEEP_SECONDS`.
"""
