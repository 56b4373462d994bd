"""Delivering alerts to people: a webhook poster and the monitor's change notifications."""
