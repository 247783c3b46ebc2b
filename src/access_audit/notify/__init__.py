"""Notifiers: console and JSON Lines (console.py), Slack (slack.py, with its interactive endpoint in
interactive.py) and a generic webhook (webhook.py). Slack and the webhook deliver through a durable
outbox (outbox.py); messages are rendered from the jinja2 templates in ``notifications/`` (render.py)."""
