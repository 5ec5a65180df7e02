"""Signals other apps listen to."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after commit when an agent sends a public reply, so the mail app can deliver it.
# kwargs: inquiry (Inquiry), followup_id (int), actor (User)
inquiry_replied = Signal()
