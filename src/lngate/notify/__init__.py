"""Notifications: email to customers and the shop, alerts to operators (email, Slack, Discord)."""
