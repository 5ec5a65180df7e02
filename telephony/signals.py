"""Signals telephony's services send after commit; telephony.tasks queues the slow work.

Services never import the tasks that call them: TelephonyConfig.ready connects the tasks
module's receivers here.
"""

from __future__ import annotations

from django.dispatch import Signal

# An agent asked for an outbound call; Twilio's REST API places it. kwargs: call_id (int)
outbound_call_requested = Signal()

# An agent gave a call its wrap-up code (sent after commit; city escalation opens a report for
# 「市へ取次」). kwargs: call_id (int), disposition_code (str), actor_id (int)
call_wrapped_up = Signal()
