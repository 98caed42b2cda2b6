"""The audit trail: who ran what through the gateway, when, and how it ended (issue 13 finding 8)."""
