"""Signals escalation's services send after commit; escalation.tasks hands the work to Celery."""

from __future__ import annotations

from django.dispatch import Signal

# Notification attempts are waiting to be sent. kwargs: notification_ids (list[int])
notifications_queued = Signal()
