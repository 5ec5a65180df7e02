"""The one access policy: who sees which municipalities."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from crm.access import require_write, scoped_or_404, visible_municipality_ids
from crm.models import Donor, DonorPhone, Municipality
from donations_sync.models import Donation, Shipment
from tests.factories import DonorPhoneFactory, ShipmentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipments(city_a, city_b):
    a = ShipmentFactory(donation__donor__municipality=city_a, gift_item__municipality=city_a)
    b = ShipmentFactory(donation__donor__municipality=city_b, gift_item__municipality=city_b)
    DonorPhoneFactory(donor=a.donation.donor)
    DonorPhoneFactory(donor=b.donation.donor)
    return a, b


def test_roles_see_the_right_municipalities(
    city_a, city_b, agent_a, supervisor, operator_admin, city_official_b
):
    assert visible_municipality_ids(agent_a) == {city_a.id}
    assert visible_municipality_ids(supervisor) == {city_a.id, city_b.id}
    assert visible_municipality_ids(operator_admin) == {city_a.id, city_b.id}
    assert visible_municipality_ids(city_official_b) == {city_b.id}


def test_city_official_with_two_cities_sees_none(city_a, city_b):
    # A misconfigured city account must not widen its view to two cities.
    official = UserFactory(role="city_official", municipalities=[city_a, city_b])
    assert visible_municipality_ids(official) == frozenset()


def test_inactive_and_anonymous_see_nothing(city_a):
    from django.contrib.auth.models import AnonymousUser

    inactive = UserFactory(role="operator_admin", is_active=False)
    assert visible_municipality_ids(inactive) == frozenset()
    assert visible_municipality_ids(AnonymousUser()) == frozenset()


@pytest.mark.parametrize("model", [Municipality, Donor, DonorPhone, Donation, Shipment])
def test_every_scoped_model_filters(model, shipments, city_a, city_b, city_official_b, agent_a):
    b_rows = set(model.objects.visible_to(city_official_b).values_list("pk", flat=True))
    a_rows = set(model.objects.visible_to(agent_a).values_list("pk", flat=True))
    assert b_rows and a_rows
    assert not (a_rows & b_rows)
    field = "id" if model is Municipality else "municipality_id"
    assert set(model.objects.filter(pk__in=b_rows).values_list(field, flat=True)) == {city_b.id}


def test_scoped_or_404_hides_other_cities(shipments, city_official_b):
    a, b = shipments
    assert scoped_or_404(Shipment.objects.all(), city_official_b, pk=b.pk) == b
    with pytest.raises(Http404):
        scoped_or_404(Shipment.objects.all(), city_official_b, pk=a.pk)


def test_city_officials_are_read_only(city_b, city_official_b, supervisor):
    with pytest.raises(PermissionDenied):
        require_write(city_official_b, city_b.id)
    require_write(supervisor, city_b.id)


def test_agent_cannot_write_elsewhere(city_b, agent_a):
    with pytest.raises(PermissionDenied):
        require_write(agent_a, city_b.id)


def test_home_lists_only_visible_municipalities(login, city_a, city_b, city_official_b, supervisor):
    body = login(city_official_b).get("/municipalities/").content.decode()
    assert "福山市" in body and "小樽市" not in body
    body = login(supervisor).get("/municipalities/").content.decode()
    assert "福山市" in body and "小樽市" in body
