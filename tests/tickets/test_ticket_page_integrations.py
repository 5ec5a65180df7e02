"""The ticket page brings together what other apps hold about the ticket: mail attachments and
the call-back button."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import DonorFactory
from tickets import services
from tickets.mail.models import InboundAttachment, InboundMessage

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.fixture
def inquiry(city_a):
    donor = DonorFactory(municipality=city_a)
    inquiry = services.inquiry_open(
        actor=None,
        municipality=city_a,
        channel="email",
        title="破損の写真",
        description="写真を添付します",
        donor=donor,
    )
    message = InboundMessage.objects.create(
        municipality=city_a, source="pipe", raw=b"x", content_hash="b" * 64, status="processed"
    )
    InboundAttachment.objects.create(
        message=message,
        municipality=city_a,
        inquiry=inquiry,
        filename="破損.png",
        declared_type="image/png",
        sniffed_type="image/png",
        size=len(PNG),
        data=PNG,
        status=InboundAttachment.Status.KEPT,
    )
    return inquiry


def test_agent_sees_photo_and_call_back(login, agent_a, inquiry):
    body = login(agent_a).get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "破損.png" in body
    assert "<img" in body
    assert reverse("telephony:call_back", args=[inquiry.pk]) in body


def test_city_official_gets_neither(login, city_official_a, inquiry):
    body = login(city_official_a).get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "破損の写真" in body
    assert reverse("telephony:call_back", args=[inquiry.pk]) not in body
    assert "破損.png" not in body


def test_supervisor_nav_links_wallboard_and_quarantine(login, supervisor, inquiry):
    body = login(supervisor).get(reverse("ticket_list")).content.decode()
    assert reverse("telephony:wallboard") in body
    assert reverse("mail_quarantine") in body


def test_timeline_names_changed_fields_in_japanese(login, agent_a, inquiry):
    services.inquiry_change_severity(actor=agent_a, inquiry=inquiry, severity="high")
    body = login(agent_a).get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "重要度:" in body
    assert "severity:" not in body
