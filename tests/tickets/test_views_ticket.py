"""Creating a ticket from a record, the ticket page, replies and notes, status, 定型文."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from crm.models import PersonalDataAccess
from knowledge.models import CannedReply
from knowledge.services import knowledge_save
from tests.factories import DonorFactory, ShipmentFactory, UserFactory
from tickets.models import Inquiry, InquiryEvent, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipment(city_a):
    donor = DonorFactory(municipality=city_a, name="鈴木 一郎")
    return ShipmentFactory(
        donation__donor=donor,
        donation__portal_order_number="123456-20241201-00000042",
        donation__amount=20000,
        tracking_number="400000000013",
    )


def test_create_from_shipment_prefills_links(login, agent_a, shipment):
    client = login(agent_a)
    url = reverse("ticket_create") + f"?shipment={shipment.id}"
    page = client.get(url).content.decode()
    checked = re.findall(r'<input[^>]*name="shipments"[^>]*>', page)
    assert len(checked) == 1
    assert f'value="{shipment.id}"' in checked[0] and "checked" in checked[0]
    response = client.post(
        reverse("ticket_create"),
        {
            "shipment": shipment.id,
            "channel": "phone",
            "requester_type": "donor",
            "category": "damaged",
            "severity": "high",
            "title": "いくらの容器が割れていた",
            "description": "届いた箱がつぶれていた",
            "shipments": [shipment.id],
            "donations": [shipment.donation_id],
        },
    )
    inquiry = Inquiry.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("ticket_detail", args=[inquiry.pk])
    assert inquiry.donor == shipment.donation.donor
    assert list(inquiry.shipments.all()) == [shipment]
    assert list(inquiry.donations.all()) == [shipment.donation]
    assert inquiry.category.code == "damaged" and inquiry.severity == "high"
    assert inquiry.ticket.assigned_to == agent_a


def test_cannot_link_records_of_another_municipality(login, agent_a, city_b, shipment):
    foreign = ShipmentFactory(donation__donor__municipality=city_b)
    client = login(agent_a)
    assert client.get(reverse("ticket_create") + f"?shipment={foreign.id}").status_code == 404
    # A foreign id smuggled into the checkbox list is not a valid choice.
    response = client.post(
        reverse("ticket_create"),
        {
            "donor": shipment.donation.donor_id,
            "channel": "phone",
            "requester_type": "donor",
            "severity": "normal",
            "title": "x",
            "shipments": [foreign.id],
        },
    )
    assert response.status_code == 200
    assert not Inquiry.objects.exists()


def test_ticket_page_reply_note_status(login, agent_a, shipment, open_inquiry):
    inquiry = open_inquiry(donor=shipment.donation.donor, shipments=[shipment], category="damaged")
    client = login(agent_a)
    page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "小樽市" in page and "破損・傷み" in page and "鈴木 一郎" in page
    assert "4000-0000-0013" in page
    client.post(
        reverse("ticket_followup", args=[inquiry.pk]), {"kind": "reply", "body": "再送します"}
    )
    client.post(
        reverse("ticket_followup", args=[inquiry.pk]), {"kind": "note", "body": "事業者に確認中"}
    )
    client.post(reverse("ticket_status", args=[inquiry.pk]), {"status": Status.CLOSED})
    client.post(
        reverse("ticket_classify", args=[inquiry.pk]), {"category": "receipt", "severity": "high"}
    )
    kinds = list(InquiryEvent.objects.filter(inquiry=inquiry).values_list("kind", "operator_only"))
    assert ("reply", False) in kinds and ("note", True) in kinds and ("status", False) in kinds
    assert ("category", False) in kinds and ("severity", False) in kinds
    inquiry.refresh_from_db()
    assert inquiry.status == Status.CLOSED
    assert inquiry.category.code == "receipt" and inquiry.severity == "high"
    page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "再送します" in page and "事業者に確認中" in page and "完了" in page


def test_ticket_view_is_logged(login, agent_a, open_inquiry):
    inquiry = open_inquiry()
    login(agent_a).get(reverse("ticket_detail", args=[inquiry.pk]))
    row = PersonalDataAccess.objects.get(record_type="ticket")
    assert row.record_id == str(inquiry.pk) and row.user == agent_a and row.action == "view"


def test_canned_replies_are_filled_from_the_ticket(login, agent_a, shipment, open_inquiry):
    inquiry = open_inquiry(
        donor=shipment.donation.donor,
        shipments=[shipment],
        donations=[shipment.donation],
        category="damaged",
    )
    data = login(agent_a).get(reverse("ticket_canned", args=[inquiry.pk]), {"q": "破損"}).json()
    reply = next(r for r in data["replies"] if r["title"] == "返礼品破損のお詫びと再送のご案内")
    assert "鈴木 一郎 様" in reply["text"]
    assert "4000-0000-0013" in reply["text"]
    assert "小樽市ふるさと納税コールセンター" in reply["text"]  # {応答名}
    assert "{寄附者名}" not in reply["text"]
    assert reply["missing"] == []
    assert any("破損" in a["title"] for a in data["articles"])


def test_hostile_canned_reply_and_donor_name_stay_literal_and_escaped(
    login, agent_a, operator_admin, city_a, open_inquiry, settings
):
    donor = DonorFactory(
        municipality=city_a, name="<script>alert(1)</script>{{ settings.SECRET_KEY }}"
    )
    knowledge_save(
        actor=operator_admin,
        model=CannedReply,
        municipality=city_a,
        title="危険な定型文",
        keywords="危険",
        body="{% load static %}{{ settings.SECRET_KEY }} {寄附者名} {{ request.user.password }}",
    )
    inquiry = open_inquiry(donor=donor)
    client = login(agent_a)
    response = client.get(reverse("ticket_canned", args=[inquiry.pk]), {"q": "危険"})
    text = response.json()["replies"][0]["text"]
    assert text == (
        "{% load static %}{{ settings.SECRET_KEY }} "
        "<script>alert(1)</script>{{ settings.SECRET_KEY }} {{ request.user.password }}"
    )
    assert settings.SECRET_KEY not in response.content.decode()
    # JSON is served as JSON (the page inserts it as text), and the donor page escapes the name.
    assert response["Content-Type"] == "application/json"
    page = client.get(reverse("donor_detail", args=[donor.id])).content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_city_scoping_of_every_ticket_url(login, open_inquiry, city_official_b, city_b):
    inquiry = open_inquiry()
    agent_b = UserFactory(role="agent", municipalities=[city_b])
    for user in (city_official_b, agent_b):
        client = login(user)
        for name in ("ticket_detail", "ticket_canned"):
            assert client.get(reverse(name, args=[inquiry.pk])).status_code in (403, 404), name
        for name in ("ticket_followup", "ticket_status", "ticket_assign_me", "ticket_classify"):
            response = client.post(
                reverse(name, args=[inquiry.pk]),
                {"kind": "note", "body": "x", "status": Status.CLOSED},
            )
            assert response.status_code in (403, 404), name
        assert client.get(
            reverse("ticket_create") + f"?municipality={inquiry.municipality_id}"
        ).status_code in (403, 404)
    assert InquiryEvent.objects.filter(inquiry=inquiry).count() == 1  # only the opening row


def test_city_official_cannot_write_even_own_tickets(login, open_inquiry, city_official_a):
    inquiry = open_inquiry()
    client = login(city_official_a)
    assert (
        client.post(
            reverse("ticket_followup", args=[inquiry.pk]), {"kind": "reply", "body": "x"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            reverse("ticket_status", args=[inquiry.pk]), {"status": Status.CLOSED}
        ).status_code
        == 403
    )
    assert client.get(reverse("ticket_canned", args=[inquiry.pk])).status_code == 403
    assert (
        client.get(
            reverse("ticket_create") + f"?municipality={inquiry.municipality_id}"
        ).status_code
        == 403
    )


def test_status_follows_the_workflow(login, agent_a, open_inquiry):
    inquiry = open_inquiry()
    client = login(agent_a)
    url = reverse("ticket_status", args=[inquiry.pk])
    client.post(url, {"status": Status.CLOSED})
    # 完了 can only be reopened; 解決済 and 重複 are not offered and are refused.
    page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    options = re.search(
        r'<select name="status" id="status-select"[^>]*>(.*?)</select>', page
    ).group(1)
    assert "再開" in options and "解決済" not in options and "重複" not in options
    client.post(url, {"status": Status.RESOLVED})
    client.post(url, {"status": Status.DUPLICATE})
    inquiry.refresh_from_db()
    assert inquiry.status == Status.CLOSED
    client.post(url, {"status": Status.REOPENED})
    inquiry.refresh_from_db()
    assert inquiry.status == Status.REOPENED
