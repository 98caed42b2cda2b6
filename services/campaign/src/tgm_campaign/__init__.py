"""TG-Matrix campaign service: queue, pacing, automation and CRM."""

__version__ = "0.1.0"
