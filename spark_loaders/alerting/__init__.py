"""Delivering alerts to the outside world (webhooks)."""
