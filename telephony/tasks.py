"""Slow telephony work, off the webhook's path: tickets from voicemail, call-backs via REST."""

from __future__ import annotations

from celery import shared_task

from telephony import services
from telephony.models import Call


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def voicemail_ticket_open(call_id: int) -> int | None:
    # Kept for messages queued before voicemails were promised as jobs (jobs.PendingJob);
    # idempotent: the service locks the call and returns the ticket it already has.
    call = Call.objects.filter(pk=call_id).first()
    if call is None:
        return None
    return services.voicemail_ticket_open(call=call).pk


@shared_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def outbound_call_place(call_id: int) -> str | None:
    call = Call.objects.filter(pk=call_id).first()
    if call is None:
        return None
    return services.outbound_call_place(call=call).call_sid


@shared_task(ignore_result=True)
def presence_sweep() -> int:
    """Celery beat, every heartbeat interval: agents whose every tab is gone go offline."""
    return len(services.presence_sweep())


@shared_task
def calls_reconcile() -> dict[str, int]:
    return services.calls_reconcile()


# Receivers of telephony.signals (connected in TelephonyConfig.ready): queue after the commit.
def queue_outbound_call_place(sender, *, call_id: int, **kwargs) -> None:
    outbound_call_place.delay(call_id)


def link_opened_inquiry_to_call(sender, *, inquiry_ids, actor_id=None, **kwargs) -> None:
    """tickets.signals.inquiry_opened: a ticket opened mid-call joins the agent's call."""
    services.call_link_opened_inquiries(inquiry_ids=list(inquiry_ids), actor_id=actor_id)
