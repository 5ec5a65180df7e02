"""Places on tickets' pages where the apps above tickets add their own parts.

tickets names the places, never the apps: telephony, for one, adds its phone bar and incoming-call
area to the console and its call-back button and calls to the ticket pages (TelephonyConfig.ready),
so tickets' templates include no telephony template. A page renders each part with its own
context; a place nobody fills renders nothing.
"""

from __future__ import annotations

PLACES = frozenset(
    {
        "console_phone_bar",  # the console's phone bar, in base.html's phone_bar block
        "console_incoming",  # between the console's search and its ticket columns
        "ticket_actions",  # the operator's ticket page, after its own action forms
        "ticket_summary",  # both ticket pages (operator's and city's), right after the header
        "ticket_calls",  # the city official's ticket page, after the timeline
        "donor_shipment",  # the donor page, at the end of each shipment row (``s`` is the row)
    }
)

_parts: dict[str, list[str]] = {}


def page_part_add(place: str, template_name: str) -> None:
    """Render ``template_name`` at ``place``, after the parts added before it."""
    if place not in PLACES:
        raise ValueError(f"no such place on tickets' pages: {place}")
    names = _parts.setdefault(place, [])
    if template_name not in names:
        names.append(template_name)


def page_parts(place: str) -> tuple[str, ...]:
    return tuple(_parts.get(place, ()))
