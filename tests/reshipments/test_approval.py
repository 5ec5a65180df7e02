"""Requesting a re-shipment from a ticket and deciding on it: supervisor only, supervisor then
city; who may not decide; what the final approval writes (replacement shipment + outbox)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from crm.models import AuditLog
from donations_sync.models import OutboxMessage, Shipment
from reshipments.models import Reshipment, ReshipmentSettings
from tickets.mail.models import InboundAttachment
from tickets.models import InquiryEvent

pytestmark = pytest.mark.django_db


def _request(client, inquiry, shipment, **extra):
    photo = InboundAttachment.objects.get(inquiry=inquiry, filename="broken.png")
    data = {
        "original": shipment.pk,
        "reason": "damaged",
        "fault": "carrier",
        "gift_item": "",
        "photos": [photo.pk],
        "address_mode": "same",
        "desired_time_slot": "am",
        "gift_cost": "5000",
        "shipping_cost": "1200",
        "note": "瓶が割れていた",
        **extra,
    }
    response = client.post(reverse("reshipments:new_for_ticket", args=[inquiry.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return Reshipment.objects.latest("pk")


def _timeline_titles(inquiry) -> list[str]:
    return list(
        InquiryEvent.objects.filter(inquiry=inquiry, kind="reshipment")
        .order_by("at", "followup_id")
        .values_list("followup__title", flat=True)
    )


def test_ticket_page_offers_the_request_and_the_form_shows_the_photo(
    login, agent_a, damaged_ticket
):
    client = login(agent_a)
    page = client.get(reverse("ticket_detail", args=[damaged_ticket.pk])).content.decode()
    assert reverse("reshipments:new_for_ticket", args=[damaged_ticket.pk]) in page
    form = client.get(reverse("reshipments:new_for_ticket", args=[damaged_ticket.pk]))
    assert "broken.png" in form.content.decode()
    assert "原因者" in form.content.decode()


def test_supervisor_only_path(login, agent_a, supervisor_a, damaged_ticket, shipment_a):
    agent = login(agent_a)
    r = _request(agent, damaged_ticket, shipment_a)
    assert r.status == Reshipment.Status.SUPERVISOR_PENDING
    assert r.billable_to_city is False  # the carrier's damage is claimed from the carrier
    assert [p.filename for p in r.photos.all()] == ["broken.png"]
    assert r.inquiry_id == damaged_ticket.pk

    # The agent cannot approve: refused, nothing written.
    response = agent.post(reverse("reshipments:approve", args=[r.pk]))
    assert response.status_code == 403
    r.refresh_from_db()
    assert r.status == Reshipment.Status.SUPERVISOR_PENDING
    assert not OutboxMessage.objects.exists()

    sv = login(supervisor_a)
    assert f"再送 #{r.pk}" in sv.get(reverse("reshipments:list")).content.decode()
    response = sv.post(reverse("reshipments:approve", args=[r.pk]), {"comment": "承認します"})
    assert response.status_code == 302
    r.refresh_from_db()
    assert r.status == Reshipment.Status.APPROVED
    replacement = r.replacement
    assert replacement.replaces_id == shipment_a.pk
    assert replacement.gift_item_id == shipment_a.gift_item_id
    assert replacement.desired_time_slot == "am"
    message = OutboxMessage.objects.get()
    assert message.kind == "reshipment"
    assert message.idempotency_key == f"reshipment-{r.pk}"
    assert message.shipment_id == replacement.pk
    assert message.payload["billable_to_city"] is False
    assert message.payload["gift_cost"] == 5000

    # A second click changes nothing.
    sv.post(reverse("reshipments:approve", args=[r.pk]))
    assert OutboxMessage.objects.count() == 1
    assert Shipment.objects.filter(replaces=shipment_a).count() == 1

    titles = _timeline_titles(damaged_ticket)
    assert titles[0].startswith("再送を依頼")
    assert titles[1].startswith("再送をSVが承認")
    steps = list(
        AuditLog.objects.filter(action="reshipment")
        .order_by("at")
        .values_list("detail__step", flat=True)
    )
    assert steps == ["requested", "supervisor_approved"]

    # The replacement shows on the ticket (linked) and on the donor page, marked 再送.
    ticket_page = agent.get(reverse("ticket_detail", args=[damaged_ticket.pk])).content.decode()
    assert f'id="linked-shipment-{replacement.pk}"' in ticket_page
    donor_page = agent.get(
        reverse("donor_detail", args=[shipment_a.donation.donor_id])
    ).content.decode()
    assert f'data-replaces="{shipment_a.pk}"' in donor_page
    assert reverse("reshipments:new_for_shipment", args=[shipment_a.pk]) in donor_page


def test_supervisor_then_city(
    login, agent_a, supervisor_a, city_official_a, city_official_b, damaged_ticket, shipment_a
):
    ReshipmentSettings.objects.create(
        municipality=shipment_a.municipality, city_approval_required=True
    )
    r = _request(login(agent_a), damaged_ticket, shipment_a, fault="donor", reason="returned")
    assert r.billable_to_city is True
    assert r.city_approval_required

    # The city cannot decide before the supervisor.
    city = login(city_official_a)
    assert city.post(reverse("reshipments:approve", args=[r.pk])).status_code == 403

    login(supervisor_a).post(reverse("reshipments:approve", args=[r.pk]))
    r.refresh_from_db()
    assert r.status == Reshipment.Status.CITY_PENDING
    assert not OutboxMessage.objects.exists()
    # A supervisor cannot stand in for the city.
    assert login(supervisor_a).post(reverse("reshipments:approve", args=[r.pk])).status_code == 403

    # The other city's official neither sees nor decides.
    other = login(city_official_b)
    assert other.get(reverse("reshipments:detail", args=[r.pk])).status_code == 404
    assert other.post(reverse("reshipments:approve", args=[r.pk])).status_code == 404
    assert f"再送 #{r.pk}" not in other.get(reverse("reshipments:list")).content.decode()

    # The city's own official sees it waiting for them (and on their ticket page) and approves
    # with a comment.
    ticket_page = city.get(reverse("ticket_detail", args=[damaged_ticket.pk])).content.decode()
    assert f'id="reshipment-{r.pk}"' in ticket_page
    assert 'id="reshipment-request"' not in ticket_page
    listing = city.get(reverse("reshipments:list")).content.decode()
    assert f"再送 #{r.pk}" in listing
    detail = city.get(reverse("reshipments:detail", args=[r.pk])).content.decode()
    assert 'id="approve"' in detail
    city.post(reverse("reshipments:approve", args=[r.pk]), {"comment": "市負担で了承"})
    r.refresh_from_db()
    assert r.status == Reshipment.Status.APPROVED
    assert r.city_comment == "市負担で了承"
    assert OutboxMessage.objects.get().shipment_id == r.replacement_id
    titles = _timeline_titles(damaged_ticket)
    assert [t.split("（")[0] for t in titles] == ["再送を依頼", "再送をSVが承認", "再送を市が承認"]
    steps = set(AuditLog.objects.filter(action="reshipment").values_list("detail__step", flat=True))
    assert steps == {"requested", "supervisor_approved", "city_approved"}


def test_city_refuses_with_a_comment(
    login, agent_a, supervisor_a, city_official_a, damaged_ticket, shipment_a
):
    ReshipmentSettings.objects.create(
        municipality=shipment_a.municipality, city_approval_required=True
    )
    r = _request(login(agent_a), damaged_ticket, shipment_a)
    login(supervisor_a).post(reverse("reshipments:approve", args=[r.pk]))
    city = login(city_official_a)
    # A refusal needs its reason.
    city.post(reverse("reshipments:refuse", args=[r.pk]), {"comment": ""})
    r.refresh_from_db()
    assert r.status == Reshipment.Status.CITY_PENDING
    city.post(reverse("reshipments:refuse", args=[r.pk]), {"comment": "事業者負担で対応を"})
    r.refresh_from_db()
    assert r.status == Reshipment.Status.REFUSED
    assert r.refusal_comment == "事業者負担で対応を"
    assert r.replacement_id is None
    assert not OutboxMessage.objects.exists()
    assert _timeline_titles(damaged_ticket)[-1].startswith("再送を市が却下")


def test_supervisor_refuses(login, agent_a, supervisor_a, damaged_ticket, shipment_a):
    r = _request(login(agent_a), damaged_ticket, shipment_a)
    login(supervisor_a).post(reverse("reshipments:refuse", args=[r.pk]), {"comment": "重複"})
    r.refresh_from_db()
    assert r.status == Reshipment.Status.REFUSED
    assert not Shipment.objects.filter(replaces=shipment_a).exists()


def test_substitute_and_corrected_address(
    login, agent_a, supervisor_a, damaged_ticket, shipment_a, substitute_gift
):
    r = _request(
        login(agent_a),
        damaged_ticket,
        shipment_a,
        gift_item=substitute_gift.pk,
        address_mode="corrected",
        ship_to_name="山田 花子",
        ship_to_postal_code="〒０４７－００３２",
        ship_to_address="北海道小樽市稲穂2-22-1",
        ship_to_phone="090-1234-5678",
    )
    assert r.substitute and r.address_corrected
    login(supervisor_a).post(reverse("reshipments:approve", args=[r.pk]))
    r.refresh_from_db()
    assert r.replacement.gift_item_id == substitute_gift.pk
    assert r.replacement.ship_to_postal_code == "0470032"
    assert r.replacement.ship_to_address == "北海道小樽市稲穂2-22-1"
    assert OutboxMessage.objects.get().payload["substitute"] is True


def test_a_corrected_address_needs_its_fields(login, agent_a, damaged_ticket, shipment_a):
    response = login(agent_a).post(
        reverse("reshipments:new_for_ticket", args=[damaged_ticket.pk]),
        {
            "original": shipment_a.pk,
            "reason": "lost",
            "fault": "unknown",
            "address_mode": "corrected",
            "ship_to_postal_code": "12",
            "gift_cost": "0",
            "shipping_cost": "0",
        },
    )
    assert response.status_code == 200
    assert "郵便番号を7桁で入力してください。" in response.content.decode()
    assert not Reshipment.objects.exists()


def test_from_the_donor_page_without_a_ticket_opens_one(login, agent_a, supervisor_a, shipment_a):
    client = login(agent_a)
    url = reverse("reshipments:new_for_shipment", args=[shipment_a.pk])
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "original": shipment_a.pk,
            "reason": "lost",
            "fault": "unknown",
            "address_mode": "same",
            "gift_cost": "3000",
            "shipping_cost": "1000",
        },
    )
    assert response.status_code == 302
    r = Reshipment.objects.get()
    assert r.inquiry is not None and r.inquiry.donor_id == shipment_a.donation.donor_id
    assert list(r.inquiry.shipments.all()) == [shipment_a]
    # With the ticket open, the donor page's link leads to that ticket's form.
    again = client.get(url)
    assert again.status_code == 302
    assert reverse("reshipments:new_for_ticket", args=[r.inquiry_id]) in again["Location"]


def test_settings_are_for_supervisors(login, agent_a, supervisor_a, city_a):
    url = reverse("reshipments:settings_save", args=[city_a.pk])
    assert login(agent_a).post(url, {"city_approval_required": "on"}).status_code == 403
    assert login(agent_a).get(reverse("reshipments:settings")).status_code == 403
    assert not ReshipmentSettings.objects.filter(city_approval_required=True).exists()
    login(supervisor_a).post(url, {"city_approval_required": "on"})
    assert ReshipmentSettings.objects.get(municipality=city_a).city_approval_required
    assert AuditLog.objects.filter(action="reshipment_config").count() == 1


def test_the_screen_pop_shows_the_replacement_beside_the_original(
    login, agent_a, supervisor_a, damaged_ticket, shipment_a
):
    from django.utils import timezone

    from telephony.models import Call
    from telephony.selectors import screen_pop_payload

    r = _request(login(agent_a), damaged_ticket, shipment_a)
    login(supervisor_a).post(reverse("reshipments:approve", args=[r.pk]))
    r.refresh_from_db()
    call = Call.objects.create(
        municipality=shipment_a.municipality,
        from_e164="+819012345678",
        from_raw="09012345678",
        offered_at=timezone.now(),
    )
    [match] = screen_pop_payload(user=agent_a, call_id=call.pk)["matches"]
    [donation] = match["donations"]
    cards = {card["id"]: card for card in donation["shipments"]}
    assert cards[shipment_a.pk]["replaces_id"] is None
    assert cards[r.replacement_id]["replaces_id"] == shipment_a.pk
    assert cards[r.replacement_id]["state"] == "出荷待ち"
