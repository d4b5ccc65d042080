"""Alerts for supervisors: unfilled requests, failing CAD deliveries, expiring credentials."""
