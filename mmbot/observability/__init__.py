"""Logging, metrics and health endpoints (the only place importing prometheus_client)."""
