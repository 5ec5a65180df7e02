"""Signals mail's services send after commit; tickets.mail.tasks queues the sending.

Services never import the tasks that call them: TicketMailConfig.ready connects the tasks
module's receiver here.
"""

from __future__ import annotations

from django.dispatch import Signal

# An outbound mail is committed as pending and may be sent now. kwargs: outbound_id (int)
outbound_mail_pending = Signal()
