"""The city's screen: its own tickets with filters; operator-only notes never shown."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tickets import services
from tickets.models import Status

pytestmark = pytest.mark.django_db


def test_city_sees_own_tickets_with_filters(
    login, city_official_a, agent_a, open_inquiry, city_b, supervisor
):
    urgent = open_inquiry(title="至急：返礼品が腐っていた", severity="urgent", category="damaged")
    done = open_inquiry(title="カタログ送付済み", category="catalogue")
    services.inquiry_change_status(actor=agent_a, inquiry=done, status=Status.CLOSED)
    other = open_inquiry(actor=supervisor, municipality=city_b, title="福山市の問合せ")
    client = login(city_official_a)
    body = client.get(reverse("ticket_list")).content.decode()
    assert urgent.ticket.title in body and done.ticket.title in body
    assert other.ticket.title not in body
    body = client.get(reverse("ticket_list"), {"state": "open"}).content.decode()
    assert urgent.ticket.title in body and done.ticket.title not in body
    body = client.get(reverse("ticket_list"), {"category": "catalogue"}).content.decode()
    assert urgent.ticket.title not in body and done.ticket.title in body
    body = client.get(
        reverse("ticket_list"), {"severity": "urgent", "q": "腐って"}
    ).content.decode()
    assert urgent.ticket.title in body and done.ticket.title not in body
    # Asking for another municipality's id shows nothing of it.
    body = client.get(reverse("ticket_list"), {"m": city_b.id}).content.decode()
    assert other.ticket.title not in body


def test_city_detail_hides_operator_only_notes(login, city_official_a, agent_a, open_inquiry):
    inquiry = open_inquiry()
    services.inquiry_add_note(actor=agent_a, inquiry=inquiry, body="運営だけのメモ")
    services.inquiry_add_note(
        actor=agent_a, inquiry=inquiry, body="市と共有するメモ", operator_only=False
    )
    services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="ご連絡ありがとうございます")
    body = login(city_official_a).get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "運営だけのメモ" not in body
    assert "市と共有するメモ" in body and "ご連絡ありがとうございます" in body
    assert 'id="reply-form"' not in body
    staff = login(agent_a).get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "運営だけのメモ" in staff and 'id="reply-form"' in staff


def test_other_city_gets_404(login, city_official_b, open_inquiry):
    inquiry = open_inquiry(title="小樽市の秘密の問合せ")
    client = login(city_official_b)
    assert client.get(reverse("ticket_detail", args=[inquiry.pk])).status_code == 404
    assert "小樽市の秘密の問合せ" not in client.get(reverse("ticket_list")).content.decode()
