"""{% ticket_reshipments inquiry as rows %}: the ticket's re-shipments for its page part."""

from __future__ import annotations

from django import template

from reshipments import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def ticket_reshipments(context: template.Context, inquiry) -> list:
    request = context.get("request")
    if request is None or inquiry is None:
        return []
    return selectors.reshipments_of_inquiry(request.user, inquiry.pk)


@register.simple_tag(takes_context=True)
def reshipments_awaiting(context: template.Context) -> int:
    request = context.get("request")
    return selectors.awaiting_count(request.user) if request is not None else 0
