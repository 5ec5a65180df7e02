"""What the hand-over and retention work needs of helpdesk's tables (only tickets imports it).

helpdesk's Queue does not name a municipality; ``tickets.MunicipalityQueue`` maps one to the
other. ``municipality_roots`` gives the administration app's generic walk over the app registry
the one way in: every helpdesk table (Ticket, FollowUp, their attachments, changes, CCs …) hangs
off the Queue by foreign keys, so the walk finds them without naming them.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from django.db import models, transaction
from helpdesk.models import FollowUpAttachment, Queue, Ticket

from tickets.models import OPEN_STATUSES, Inquiry, MunicipalityQueue


def _queue_ids(municipality_id: int) -> list[int]:
    return list(
        MunicipalityQueue.objects.filter(municipality_id=municipality_id).values_list(
            "queue_id", flat=True
        )
    )


def municipality_roots() -> dict[type[models.Model], Callable[[int], list[int]]]:
    """Models that belong to a municipality without a foreign key to it, with the ids of one's."""
    return {Queue: _queue_ids}


def closed_inquiry_ids(*, municipality_id: int, closed_before: datetime.datetime) -> list[int]:
    """Inquiries of a municipality resolved or closed before the given time (retention)."""
    return list(
        Inquiry.objects.filter(
            municipality_id=municipality_id,
            resolved_at__lt=closed_before,
        )
        .exclude(status__in=OPEN_STATUSES)
        .values_list("pk", flat=True)
    )


def attachment_files_older_than(
    *, municipality_id: int, before: datetime.datetime
) -> list[FollowUpAttachment]:
    return list(
        FollowUpAttachment.objects.filter(
            followup__ticket__queue_id__in=_queue_ids(municipality_id),
            followup__date__lt=before,
        ).exclude(file="")
    )


@transaction.atomic
def inquiries_delete(*, inquiry_ids: list[int]) -> int:
    """Delete inquiries with their whole helpdesk ticket (follow-ups, attachments, timeline).

    Calls, mail and attachments that point at them keep their rows with the link cleared
    (their own retention decides about them). Files of helpdesk attachments are removed.
    """
    tickets = Ticket.objects.filter(pk__in=inquiry_ids)
    for attachment in FollowUpAttachment.objects.filter(followup__ticket__in=tickets):
        if attachment.file:
            attachment.file.delete(save=False)
    count = len(inquiry_ids)
    tickets.delete()
    return count


@transaction.atomic
def attachment_files_remove(*, attachments: list[FollowUpAttachment]) -> int:
    removed = 0
    for attachment in attachments:
        if attachment.file:
            attachment.file.delete(save=False)
            removed += 1
    FollowUpAttachment.objects.filter(pk__in=[a.pk for a in attachments]).delete()
    return removed


def municipality_ticket_ids(*, municipality_id: int) -> list[int]:
    """Ids of a municipality's tickets (their live groups are named after them)."""
    return list(
        Ticket.objects.filter(queue_id__in=_queue_ids(municipality_id)).values_list("pk", flat=True)
    )


def queue_permission_codenames(*, queue_ids: list[int]) -> list[str]:
    """The auth permissions helpdesk creates with each Queue (``queue_access_<slug>``)."""
    names = Queue.objects.filter(pk__in=queue_ids).values_list("permission_name", flat=True)
    return [name.split(".", 1)[-1] for name in names if name]


@transaction.atomic
def queue_permissions_delete(*, codenames: list[str]) -> int:
    """What helpdesk's Queue.delete() removes after the queue; a bulk delete must do it too."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.get_for_model(Queue)
    deleted, _ = Permission.objects.filter(
        content_type=content_type, codename__in=codenames
    ).delete()
    return deleted


def queue_permissions_left(*, codenames: list[str]) -> list[str]:
    from django.contrib.auth.models import Permission

    return list(
        Permission.objects.filter(codename__in=codenames).values_list("codename", flat=True)
    )
