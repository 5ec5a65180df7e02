"""Signals other apps listen to."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after commit when an agent sends a public reply, so the mail app can deliver it.
# kwargs: inquiry (Inquiry), followup_id (int), actor (User)
inquiry_replied = Signal()

# Sent after commit when inquiries are opened. kwargs: inquiry_ids (list[int]), actor_id (int|None)
inquiry_opened = Signal()

# Sent after commit when an inquiry's category or severity changed.
# kwargs: inquiry_id (int), actor_id (int|None), field ("category" or "severity")
inquiry_reclassified = Signal()

# Sent after commit when requesters' messages (mail, FAX, letter) joined inquiries.
# kwargs: inquiry_ids (list[int])
inquiry_message_added = Signal()
