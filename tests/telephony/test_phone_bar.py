"""The phone bar follows operator staff to every page they work on; the full pop stays on the
console. City officials and half-logged-in staff (before TOTP) get none."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import DonorFactory
from tickets import services as ticket_services
from tickets.models import Channel

pytestmark = pytest.mark.django_db


def bar(html: str) -> dict[str, bool]:
    return {
        "bar": 'id="phone-bar"' in html and "js/screenpop.js" in html,
        "compact_pop": 'id="phone-pop"' in html,
        "full_pop": 'id="incoming-call"' in html and 'id="wrap-up-template"' in html,
    }


def test_every_operator_page_has_the_phone_bar_and_the_console_the_full_pop(login, agent_a, city_a):
    donor = DonorFactory(municipality=city_a)
    inquiry = ticket_services.inquiry_open(
        actor=agent_a, municipality=city_a, channel=Channel.PHONE, title="住所変更", description=""
    )
    client = login(agent_a)
    for url in (
        reverse("ticket_detail", args=[inquiry.pk]),
        reverse("donor_detail", args=[donor.pk]),
        reverse("ticket_list"),
        reverse("knowledge_index"),
    ):
        html = client.get(url).content.decode()
        assert bar(html) == {"bar": True, "compact_pop": True, "full_pop": False}, url
        assert 'data-presence="available"' in html and 'data-presence="break"' in html
    console = client.get(reverse("console")).content.decode()
    assert bar(console) == {"bar": True, "compact_pop": False, "full_pop": True}
    assert console.count('id="phone-bar"') == 1


def test_no_phone_bar_for_city_officials_or_before_the_totp_step(login, agent_a, city_official_a):
    html = login(city_official_a).get(reverse("ticket_list")).content.decode()
    assert not bar(html)["bar"]
    half = Client()
    half.force_login(agent_a)  # password accepted, TOTP not yet
    totp_step = half.get(reverse("two_factor"))
    assert totp_step.status_code == 200
    assert not bar(totp_step.content.decode())["bar"]
