"""Reads of the agent's ticket page beyond the timeline: the 定型文 variables of a ticket, what
may be linked to it or merged with it, and the customer panel. Everything stays within the
ticket's own municipality."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Prefetch, QuerySet

from crm import normalize
from crm.models import Donor, User
from donations_sync.models import Donation, Shipment
from donations_sync.presenters import present_donation
from knowledge.render import variables_for
from tickets import selectors
from tickets.models import Inquiry, Status
from tickets.search import matching_text


def ticket_variables(user: User, inquiry: Inquiry) -> dict[str, str]:
    """The values of the 定型文 variables on this ticket (its first linked donation/shipment)."""
    donation = inquiry.donations.visible_to(user).select_related("donor").first()
    shipment = (
        inquiry.shipments.visible_to(user)
        .select_related("gift_item", "carrier", "donation__donor")
        .first()
    )
    return variables_for(
        municipality=inquiry.municipality,
        donor=inquiry.donor,
        donation=donation or (shipment.donation if shipment else None),
        shipment=shipment,
        ticket_number=inquiry.pk,
        agent=user,
    )


def link_candidates(user: User, inquiry: Inquiry, query: str) -> dict[str, Any]:
    """Donors, donations and shipments of the ticket's municipality that ``query`` names (the
    console search's interpretation), plus the linked donor's own donations and shipments."""
    scope = selectors.search_municipality_ids(user, inquiry.municipality_id)
    found = selectors._Found()
    text = normalize.nfkc(query or "").strip()
    if text and scope:
        compact = re.sub(r"\s", "", text)
        found = selectors._interpret(user, scope, text, compact, [])
    donor_ids = list(dict.fromkeys(i for i, _ in found.donor_hits))[: selectors.SEARCH_LIMIT]
    donors = Donor.objects.visible_to(user).filter(
        municipality_id=inquiry.municipality_id, id__in=donor_ids
    )
    donations = Donation.objects.visible_to(user).filter(
        municipality_id=inquiry.municipality_id, id__in=found.donation_ids
    )
    shipments = Shipment.objects.visible_to(user).filter(
        municipality_id=inquiry.municipality_id, id__in=found.shipment_ids
    )
    if inquiry.donor_id:
        donations = donations | Donation.objects.visible_to(user).filter(donor=inquiry.donor_id)
        shipments = shipments | Shipment.objects.visible_to(user).filter(
            donation__donor=inquiry.donor_id
        )
    return {
        "donors": list(donors.order_by("name")[: selectors.SEARCH_LIMIT]),
        "donations": list(donations.select_related("donor").order_by("-donated_at")[:30]),
        "shipments": list(
            shipments.select_related("gift_item", "donation__donor", "carrier").order_by(
                "-donation__donated_at", "delivery_number"
            )[:30]
        ),
    }


def merge_candidates(user: User, inquiry: Inquiry, query: str) -> QuerySet[Inquiry]:
    """Tickets of the SAME municipality that ``query`` names (#number, the donor's other
    tickets, or text), never the ticket itself or one already merged."""
    same = (
        Inquiry.objects.visible_to(user)
        .filter(municipality_id=inquiry.municipality_id)
        .exclude(pk=inquiry.pk)
        .exclude(status=Status.DUPLICATE)
        .select_related("ticket", "donor", "category")
    )
    text = normalize.nfkc(query or "").strip()
    number = selectors._TICKET_NUMBER.match(text)
    if number:
        return same.filter(pk=int(number.group(1)))
    if len(text) >= 2:
        return matching_text(same, user, text).order_by("-last_activity_at")[:20]
    if inquiry.donor_id:
        return same.filter(donor=inquiry.donor_id).order_by("-created_at")[:20]
    return same.none()


def customer_panel(user: User, inquiry: Inquiry) -> dict[str, Any]:
    """The donor's donations (shipments nested) and other tickets, in the donor page's words."""
    if not inquiry.donor_id:
        return {}
    donor = inquiry.donor
    donations = [
        present_donation(d, d.shipments.all())
        for d in Donation.objects.visible_to(user)
        .filter(donor=donor)
        .prefetch_related(
            Prefetch(
                "shipments",
                queryset=Shipment.objects.select_related("gift_item", "carrier").order_by(
                    "delivery_number", "id"
                ),
            )
        )
        .order_by("-donated_at")[:20]
    ]
    others = [
        selectors.present_inquiry(i)
        for i in Inquiry.objects.visible_to(user)
        .filter(donor=donor)
        .exclude(pk=inquiry.pk)
        .select_related("ticket", "category", "ticket__assigned_to")
        .order_by("-created_at")[:20]
    ]
    return {"panel_donations": donations, "panel_inquiries": others}
