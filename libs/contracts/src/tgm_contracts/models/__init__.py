"""Shared contract models, one module per domain."""
