"""The 11 system commands the gateway owns, done by fan-out to every service's `sys` subjects."""
