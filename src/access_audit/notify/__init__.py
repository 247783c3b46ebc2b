"""Notifiers: console, JSON Lines, (later) Slack and webhooks."""
