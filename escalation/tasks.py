"""Escalation's background work: sending notifications, the beat's clock and cluster scans.

The receivers at the bottom are connected in EscalationConfig.ready: tickets' and telephony's
signals (sent after their commits) and escalation's own ``notifications_queued``.
"""

from __future__ import annotations

import logging

from celery import shared_task

from escalation import services

logger = logging.getLogger("escalation")


@shared_task(ignore_result=True)
def notification_send(notification_id: int) -> None:
    # No autoretry: failures are written on the row (retrying with next_try_at) and the beat
    # hands them back; a send whose outcome is unknown is never retried.
    services.notification_send(notification_id=notification_id)


@shared_task(ignore_result=True)
def escalations_tick() -> dict[str, int]:
    return services.escalations_tick()


@shared_task(ignore_result=True)
def clusters_detect() -> int:
    return len(services.clusters_detect())


@shared_task(ignore_result=True)
def call_escalate(call_id: int, actor_id: int) -> None:
    from crm.models import User
    from telephony.models import Call

    call = Call.objects.select_related("municipality").filter(pk=call_id).first()
    actor = User.objects.filter(pk=actor_id).first()
    if call is not None and actor is not None:
        services.escalation_from_call(call=call, actor=actor)


# --- receivers ------------------------------------------------------------------------------


def queue_notifications(sender, *, notification_ids, **kwargs) -> None:
    for notification_id in notification_ids:
        try:
            notification_send.delay(notification_id)
        except Exception:  # broker down: the rows stay queued and the beat sends them later
            logger.warning(
                "notification %s not queued; the beat will", notification_id, exc_info=True
            )


def on_inquiry_opened(sender, *, inquiry_ids, **kwargs) -> None:
    services.rules_apply(inquiry_ids=inquiry_ids, source=services.Source.RULE_OPEN)


def on_inquiry_reclassified(sender, *, inquiry_id, **kwargs) -> None:
    services.rules_apply(inquiry_ids=[inquiry_id], source=services.Source.RULE_RECLASSIFY)


def on_inquiry_message_added(sender, *, inquiry_ids, **kwargs) -> None:
    services.rules_apply(inquiry_ids=inquiry_ids, source=services.Source.RULE_MESSAGE)


def on_call_wrapped_up(sender, *, call_id, disposition_code, actor_id, **kwargs) -> None:
    if disposition_code == services.ESCALATE_CITY_DISPOSITION:
        call_escalate.delay(call_id, actor_id)
