"""Signals telephony's services send after commit; telephony.tasks queues the slow work.

Services never import the tasks that call them: TelephonyConfig.ready connects the tasks
module's receivers here.
"""

from __future__ import annotations

from django.dispatch import Signal

# An agent asked for an outbound call; Twilio's REST API places it. kwargs: call_id (int)
outbound_call_requested = Signal()
