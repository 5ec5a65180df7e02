"""Signals other apps listen to, and the receiver that gives each municipality its queue."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import Signal, receiver

from crm.models import Municipality

# Sent after commit when an agent sends a public reply, so the mail app can deliver it.
# kwargs: inquiry (Inquiry), followup_id (int), actor (User)
inquiry_replied = Signal()


@receiver(post_save, sender=Municipality, dispatch_uid="tickets.municipality_queue")
def _create_municipality_queue(sender, instance: Municipality, created: bool, raw: bool, **kwargs):
    if raw:  # loaddata: the fixture carries its own queues
        return
    from tickets.services import municipality_queue_ensure

    municipality_queue_ensure(municipality=instance)
