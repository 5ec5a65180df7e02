"""A city official of city B gets nothing of city A, from every URL the project serves.

The URL list is read from the resolver, so a page or API endpoint added later is covered without
editing this test. Each parameter is filled with the id of a record of city A; pages without
parameters must not show any of city A's identifying strings.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import DonorEmailFactory, DonorPhoneFactory, ShipmentFactory

pytestmark = pytest.mark.django_db(transaction=False)

SECRET_NAME = "秘密川 一郎"
SECRET_EMAIL = "secret-donor@example.jp"
SECRET_PHONE = "+819011112222"

# URLs that are deliberately public or have no data (health check, log-in, schema of the API).
PUBLIC_OK = {"login", "healthz", "logout", "schema", "api-schema"}


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.name


def _fill(route: str, ids: dict[str, int]) -> str | None:
    def repl(match: re.Match) -> str:
        name = match.group("name")
        for key, value in ids.items():
            if key in name:
                return str(value)
        return "1"

    url = re.sub(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>", repl, route)
    if "(?P" in url or "^" in url:  # regex routes (e.g. static) are not ours
        return None
    return "/" + url.lstrip("/")


@pytest.fixture
def city_a_records(city_a):
    shipment = ShipmentFactory(
        donation__donor__municipality=city_a,
        donation__donor__name=SECRET_NAME,
        gift_item__municipality=city_a,
    )
    donor = shipment.donation.donor
    DonorPhoneFactory(donor=donor, e164=SECRET_PHONE)
    DonorEmailFactory(donor=donor, address=SECRET_EMAIL)
    ids = {
        "municipality": city_a.id,
        "donor": donor.id,
        "donation": shipment.donation.id,
        "shipment": shipment.id,
        "provider": shipment.gift_item.provider_id,
        "gift": shipment.gift_item_id,
    }
    return ids


def test_city_official_of_b_gets_nothing_of_a(login, city_official_b, city_a_records, city_b):
    client = login(city_official_b)
    checked = 0
    for route, name in _walk(get_resolver().url_patterns):
        if name in PUBLIC_OK or route.startswith(("static", "media")):
            continue
        url = _fill(route, city_a_records)
        if url is None:
            continue
        response = client.get(url)
        checked += 1
        has_params = "<" in route
        if has_params:
            assert response.status_code in (302, 403, 404, 405), (
                f"{url} answered {response.status_code}"
            )
        body = (
            response.content.decode("utf-8", errors="replace")
            if hasattr(response, "content")
            else ""
        )
        for secret in (SECRET_NAME, SECRET_EMAIL, "090-1111-2222", SECRET_PHONE):
            assert secret not in body, f"{url} shows city A's {secret}"
    assert checked >= 3
