"""TG-Matrix analytics service: events, stats, alerts and logs."""

__version__ = "0.1.0"
