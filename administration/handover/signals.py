"""Sent after commit by the services; the tasks module's receivers queue the Celery work."""

from django.dispatch import Signal

export_requested = Signal()  # export_id
deletion_requested = Signal()  # deletion_id
