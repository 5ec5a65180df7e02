"""Agent replies leave by mail."""

from __future__ import annotations

import logging

from tickets.mail.services import sending

logger = logging.getLogger(__name__)


def send_reply_by_mail(sender, *, inquiry, followup_id, actor=None, **kwargs) -> None:
    # The reply is already committed on the ticket; a mail-side failure must not undo or
    # break the agent's request, and it shows up as a failed outbound mail instead.
    try:
        sending.outbound_reply_queue(inquiry=inquiry, followup_id=followup_id)
    except Exception:
        logger.exception("reply %s of inquiry %s could not be queued", followup_id, inquiry.pk)
