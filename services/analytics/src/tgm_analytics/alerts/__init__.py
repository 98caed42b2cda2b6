"""Analytics domain `alerts`: rules over every event of the system, a probe of every service, and the
`get-alerts`, `dismiss-alert`, `clear-alerts` commands.

- rules.py: which event raises, grows or resolves which alert (pure);
- service.py: `AlertService` (`AnalyticsApp.alerts`), applying the rules and publishing what changed;
  reports read alerts through its `list`;
- probe.py: `ServiceProbe`, a `runtime.every` job asking each service's `sys.info`;
- store.py: the `alerts` collection, burst marks and the probe lease;
- handlers.py: the commands and the event consumer.

Environment (settings.py; tests shorten them): `TGM_ANALYTICS_PROBE_SECONDS` (30; 0 turns the probe
off), `TGM_ANALYTICS_PROBE_TIMEOUT_SECONDS` (3), `TGM_ANALYTICS_PROBE_MISSES` (2).
"""
