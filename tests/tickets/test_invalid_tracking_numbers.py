"""A tracking number whose carrier check digit fails is kept (the source wrote it) but flagged
on every screen that shows it, and never linked to the carrier's tracking page: the link would
show someone else's parcel, or none."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from donations_sync.models import Shipment
from telephony.models import Call
from telephony.selectors import screen_pop_payload
from tests.factories import DonationFactory, DonorFactory, DonorPhoneFactory, ShipmentFactory

pytestmark = pytest.mark.django_db

CALLER = "+819012345678"
WARNING = "伝票番号の検査数字が一致しません"
# 12345678901 mod 7 = 3: the check digit of a ヤマト number starting so is 3, not 2.
INVALID = "123456789012"
VALID = "123456789013"


@pytest.fixture
def shipments(city_a, open_inquiry):
    donor = DonorFactory(municipality=city_a, name="佐藤 花子")
    DonorPhoneFactory(donor=donor, e164=CALLER)
    donation = DonationFactory(donor=donor, status="paid")
    wrong = ShipmentFactory(
        donation=donation,
        tracking_number=INVALID,
        tracking_valid=False,
        status=Shipment.Status.SHIPPED,
        delivery_number=1,
    )
    right = ShipmentFactory(
        donation=donation,
        tracking_number=VALID,
        tracking_valid=True,
        status=Shipment.Status.SHIPPED,
        delivery_number=2,
    )
    inquiry = open_inquiry(donor=donor, donations=[donation], shipments=[wrong, right])
    return donor, wrong, right, inquiry


def _shipment_item(body: str, shipment: Shipment) -> str:
    """The markup of one shipment's line (the donor page's <li>, the ticket page's <p>)."""
    match = re.search(rf'id="(?:linked-)?shipment-{shipment.id}">(.*?)</(?:li|p)>', body, re.S)
    assert match, f"shipment {shipment.id} is not on the page"
    return match.group(1)


def test_the_pop_flags_it_and_gives_no_tracking_link(city_a, agent_a, shipments) -> None:
    _, wrong, right, _ = shipments
    call = Call.objects.create(
        municipality=city_a, from_e164=CALLER, from_raw=CALLER, offered_at=timezone.now()
    )
    [card] = screen_pop_payload(user=agent_a, call_id=call.pk)["matches"]
    by_id = {s["id"]: s for d in card["donations"] for s in d["shipments"]}
    assert by_id[wrong.id]["tracking_warning"] == WARNING
    assert by_id[wrong.id]["tracking_valid"] is False and by_id[wrong.id]["tracking_url"] == ""
    assert by_id[right.id]["tracking_warning"] == ""
    assert by_id[right.id]["tracking_url"].endswith(VALID)


def test_the_donor_and_ticket_pages_flag_it_and_link_only_the_valid_one(
    login, agent_a, shipments
) -> None:
    donor, wrong, right, inquiry = shipments
    client = login(agent_a)
    for url in (
        reverse("donor_detail", args=[donor.id]),
        reverse("ticket_detail", args=[inquiry.pk]),
    ):
        body = client.get(url).content.decode()
        flagged = _shipment_item(body, wrong)
        assert WARNING in flagged, url
        assert "1234-5678-9012" in html.unescape(flagged)  # still shown as written
        assert "kuronekoyamato" not in flagged, url
        fine = _shipment_item(body, right)
        assert WARNING not in fine and f"number01={VALID}" in fine, url


def test_search_finds_it_by_the_number_on_the_slip_and_flags_it(login, agent_a, shipments) -> None:
    _, wrong, right, _ = shipments
    client = login(agent_a)
    search = reverse("console_search")
    body = html.unescape(client.get(search, {"q": "1234-5678-9012"}).content.decode())
    assert f"#shipment-{wrong.id}" in body and WARNING in body
    valid = html.unescape(client.get(search, {"q": "1234-5678-9013"}).content.decode())
    assert f"#shipment-{right.id}" in valid and WARNING not in valid


def test_the_api_says_so_too(login, agent_a, shipments) -> None:
    _, wrong, right, _ = shipments
    client = login(agent_a)
    body = client.get(f"/api/shipments/{wrong.id}/").json()
    assert body["tracking_warning"] == WARNING and body["tracking_url"] is None
    assert client.get(f"/api/shipments/{right.id}/").json()["tracking_warning"] == ""


def test_the_new_ticket_form_flags_it_among_the_donors_shipments(login, agent_a, shipments) -> None:
    _, wrong, right, _ = shipments
    body = html.unescape(
        login(agent_a).get(reverse("ticket_create"), {"shipment": wrong.id}).content.decode()
    )
    assert f"（伝票 {INVALID}）・{WARNING}" in body
    assert f"（伝票 {VALID}）" in body and f"（伝票 {VALID}）・{WARNING}" not in body
