"""Recounting analytics after a restore (and on demand): see service.py."""
