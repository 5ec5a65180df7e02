"""The console: one search box finds donors, donations, shipments and tickets, always scoped."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import (
    DonorEmailFactory,
    DonorFactory,
    DonorPhoneFactory,
    ShipmentFactory,
)
from tickets import services
from tickets.models import Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def yamada(city_a):
    donor = DonorFactory(
        municipality=city_a, name="山田 太郎", name_kana="ヤマダ タロウ", postal_code="047-0032"
    )
    DonorPhoneFactory(donor=donor, e164="+819012345678")
    DonorEmailFactory(donor=donor, address="taro@example.jp")
    shipment = ShipmentFactory(
        donation__donor=donor,
        donation__portal_order_number="123456-20241201-00111801",
        donation__external_id="F000000777",
        tracking_number="400000000013",
    )
    return donor, shipment


def search(client, q, **extra):
    response = client.get(reverse("console_search"), {"q": q, **extra})
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "０９０−１２３４−５６７８",
        "090-1234-5678",
        "+819012345678",
        "09012345678",
        "ヤマダ",
        "やまだ たろう",
        "ﾔﾏﾀﾞ",
        "山田",
        "山田太郎",
        "Taro@Example.jp",
        "〒047-0032",
        "０４７００３２",
    ],
)
def test_donor_found_by_what_the_caller_says(login, agent_a, yamada, query):
    donor, _ = yamada
    body = search(login(agent_a), query)
    assert reverse("donor_detail", args=[donor.id]) in body
    assert "山田 太郎" in body


@pytest.mark.parametrize(
    "query, anchor",
    [
        ("123456-20241201-00111801", "donation"),
        ("F000000777", "donation"),
        ("4000-0000-0013", "shipment"),
        ("４０００００００００１３", "shipment"),
    ],
)
def test_numbers_find_the_donation_or_shipment(login, agent_a, yamada, query, anchor):
    donor, shipment = yamada
    target = shipment if anchor == "shipment" else shipment.donation
    body = search(login(agent_a), query)
    assert f"{reverse('donor_detail', args=[donor.id])}#{anchor}-{target.id}" in body


def test_one_parcel_number_finds_every_item_of_the_donation(login, agent_a, yamada):
    """Items of one donation in one parcel share its number (#12): the search shows them all."""
    donor, shipment = yamada
    same_parcel = ShipmentFactory(
        donation=shipment.donation,
        municipality=shipment.municipality,
        gift_item__municipality=shipment.municipality,
        carrier=shipment.carrier,
        delivery_number=2,
        tracking_number="400000000013",
    )
    body = search(login(agent_a), "4000-0000-0013")
    for item in (shipment, same_parcel):
        assert f"{reverse('donor_detail', args=[donor.id])}#shipment-{item.id}" in body


def test_tickets_found_by_number_and_text(login, agent_a, city_a, open_inquiry):
    inquiry = open_inquiry(title="いくらの容器が割れていた")
    client = login(agent_a)
    assert reverse("ticket_detail", args=[inquiry.pk]) in search(client, f"#{inquiry.pk}")
    assert reverse("ticket_detail", args=[inquiry.pk]) in search(client, "容器")


def test_search_is_scoped_to_visible_municipalities(login, agent_a, city_b, yamada):
    other = DonorFactory(municipality=city_b, name="山田 花子", name_kana="ヤマダ ハナコ")
    DonorPhoneFactory(donor=other, e164="+819012345678")
    body = search(login(agent_a), "090-1234-5678")
    assert "山田 太郎" in body and "山田 花子" not in body


def test_search_narrowed_to_one_municipality(login, supervisor, city_a, city_b, yamada):
    DonorFactory(municipality=city_b, name="山田 花子", name_kana="ヤマダ ハナコ")
    client = login(supervisor)
    body = search(client, "ヤマダ")
    assert "山田 太郎" in body and "山田 花子" in body
    body = search(client, "ヤマダ", m=city_b.id)
    assert "山田 太郎" not in body and "山田 花子" in body


def test_enter_without_javascript_opens_the_top_hit(login, agent_a, yamada):
    donor, shipment = yamada
    response = login(agent_a).get(reverse("console"), {"q": "400000000013", "open": "1"})
    assert response.status_code == 302
    assert response.url == f"{reverse('donor_detail', args=[donor.id])}#shipment-{shipment.id}"


def test_console_shows_my_tickets_queues_and_the_call_panel(login, agent_a, city_a, open_inquiry):
    mine = open_inquiry(title="自分の問合せ", assigned_to=agent_a)
    open_inquiry(title="誰かの問合せ", severity="urgent")
    services.inquiry_change_status(
        actor=agent_a, inquiry=open_inquiry(title="済"), status=Status.CLOSED
    )
    body = login(agent_a).get(reverse("console")).content.decode()
    assert 'id="incoming-call"' in body
    assert f"#{mine.pk}" in body and "誰かの問合せ" not in body
    # 小樽市: 2 open, 1 unassigned, 1 urgent.
    row = body.split(f'data-municipality="{city_a.id}"')[1].split("</tr>")[0]
    assert ">2</a>" in row and 'flag danger">1<' in row
    # The unassigned count is a link to that view of the list.
    assert f'?view=unassigned&amp;municipality={city_a.id}" data-unassigned' in row
    assert '件">1</a>' in row


def test_city_officials_have_no_console(login, city_official_a):
    client = login(city_official_a)
    assert client.get(reverse("console")).url == reverse("ticket_list")
    assert client.get(reverse("console_search"), {"q": "山田"}).status_code == 403


@pytest.mark.parametrize("query", ["佐藤花子", "佐藤 花子", "佐藤　花子", "佐藤"])
def test_kanji_name_with_or_without_space_of_either_width(login, agent_a, city_a, query):
    donor = DonorFactory(municipality=city_a, name="佐藤　花子", name_kana="サトウ ハナコ")
    DonorFactory(municipality=city_a, name="佐野 花子", name_kana="サノ ハナコ")
    body = search(login(agent_a), query)
    assert reverse("donor_detail", args=[donor.id]) in body
    assert "佐野" not in body
