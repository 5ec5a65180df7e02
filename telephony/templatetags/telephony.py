"""{% incoming_call_panel %}: the agent's phone controls and screen-pop area, for any page."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

from telephony import services
from telephony.models import AgentPresence, Disposition
from tickets.models import Category

register = template.Library()


@register.inclusion_tag("telephony/_panel_controls.html", takes_context=True)
def incoming_call_panel(context: template.Context, full: bool = False) -> dict[str, Any]:
    """The phone bar, on every operator page (base.html), so presence and the incoming call
    follow the agent from page to page. ``full``: the console's, with the whole screen pop, the
    wrap-up form and the browser softphone."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_operator_staff:
        return {"enabled": False}
    if settings.TWO_FACTOR_REQUIRED and not (hasattr(user, "is_verified") and user.is_verified()):
        return {"enabled": False}  # not before the TOTP step: the socket would be refused
    presence = services.presence_for(user)
    return {
        "enabled": True,
        "full": full,
        # The browser softphone (Twilio Voice JS SDK) is loaded only where it is configured.
        "voice_sdk_url": (
            settings.TELEPHONY_VOICE_SDK_URL if full and settings.TWILIO_TWIML_APP_SID else ""
        ),
        "csrf_token": context.get("csrf_token"),
        "presence": presence,
        "states": [
            (state, label)
            for state, label in AgentPresence.State.choices
            if state in services.AGENT_SETTABLE_STATES
        ],
        "dispositions": list(Disposition.objects.filter(active=True)) if full else [],
        "no_inquiry_codes": services.NO_INQUIRY_DISPOSITIONS,
        "categories": list(Category.objects.filter(active=True)) if full else [],
    }


@register.inclusion_tag("telephony/_inquiry_calls.html", takes_context=True)
def inquiry_calls(context: template.Context, inquiry: Any) -> dict[str, Any]:
    """The ticket's calls, with the recordings this user may play, for a ticket page."""
    from telephony.models import Call
    from telephony.selectors import recordings_playable_by

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"calls": []}
    calls = list(Call.objects.visible_to(user).filter(inquiry_id=inquiry.pk).order_by("offered_at"))
    playable = set(
        recordings_playable_by(user).filter(inquiry_id=inquiry.pk).values_list("pk", flat=True)
    )
    for call in calls:
        call.playable = call.pk in playable
    return {"calls": calls}


@register.simple_tag
def call_back_default(inquiry: Any) -> str:
    """The donor's number an empty 折り返し先 dials, shown before the agent presses the button."""
    from crm.normalize import format_phone_national

    return format_phone_national(services.call_back_default_number(inquiry))
