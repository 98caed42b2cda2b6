"""API keys: who may call the gateway, with which role, and how often."""
