"""A city official of city B, and an agent of city B, get nothing of city A from any URL.

The URL list is read from the resolver, so a page or API endpoint added later is covered without
editing this test. Each parameter is filled with the id of a record of city A; every answer must be
a refusal (or, for pages without parameters, must not show any of city A's identifying strings), and
POSTs must not change anything of city A.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from helpdesk.models import FollowUp

from knowledge.models import CannedReply
from telephony.models import AgentPresence, Call
from tests.conftest import response_bytes
from tests.factories import DonorEmailFactory, DonorPhoneFactory, ShipmentFactory, UserFactory
from tickets import services as ticket_services
from tickets.mail.models import InboundAttachment, InboundMessage, OutboundMessage, TriageRule
from tickets.models import Inquiry

pytestmark = pytest.mark.django_db

SECRET_NAME = "秘密川 一郎"
SECRET_EMAIL = "secret-donor@example.jp"
SECRET_PHONE = "+819011112222"
SECRETS = (SECRET_NAME, SECRET_EMAIL, "090-1111-2222", SECRET_PHONE, "秘密の件名")

# URLs that are public or hold no municipality data, and session plumbing a POST would break.
SKIP = {"login", "logout", "two_factor", "two_factor_enrol", "healthz", "api-root"}

# For DRF routes the parameter is always ``pk``: which record it means depends on the prefix.
API_PREFIX_TO_RECORD = {
    "tickets": "inquiry",
    "donors": "donor",
    "donations": "donation",
    "shipments": "shipment",
    "personal-data-access": "access",
}


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.name


def _path_param(name: str, records: dict[str, int | str]) -> str:
    for key in (
        "municipality",
        "donor",
        "ticket",
        "inquiry",
        "call",
        "message",
        "outbound",
        "rule",
        "attachment",
        "kind",
        "user",
        "pk",
    ):
        if key in name:
            return str(records[key])
    raise AssertionError(f"no city A record for URL parameter {name!r}: extend this test")


def _url(route: str, records: dict[str, int | str]) -> str | None:
    if "(?P<format>" in route or route.startswith(("static", "media")):
        return None  # format-suffix twins of API routes answer like the plain route
    if "(?P<pk>" in route:
        head = route.split("^", 1)[1].split("/", 1)[0]
        pk = records[API_PREFIX_TO_RECORD[head]]
        route = re.sub(r"\(\?P<pk>[^)]*\)", str(pk), route)
    route = route.replace("^", "").replace("$", "")
    route = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: _path_param(m.group(1), records), route)
    return "/" + route.lstrip("/")


def _body(response) -> str:
    return response_bytes(response).decode("utf-8", errors="replace")


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
    inquiry = ticket_services.inquiry_open(
        actor=None,
        municipality=city_a,
        channel="email",
        title="秘密の件名",
        description=f"{SECRET_NAME} {SECRET_EMAIL}",
        donor=donor,
        shipments=[shipment],
        submitter_email=SECRET_EMAIL,
    )
    canned = CannedReply.objects.create(municipality=city_a, title="秘密の件名", body="秘密の件名")
    call = Call.objects.create(
        municipality=city_a, call_sid="CAsecret", from_e164=SECRET_PHONE, offered_at=timezone.now()
    )
    message = InboundMessage.objects.create(
        municipality=city_a,
        source="pipe",
        raw=f"From: {SECRET_EMAIL}\r\n\r\n{SECRET_NAME}".encode(),
        content_hash="a" * 64,
        from_address=SECRET_EMAIL,
        subject="秘密の件名",
        status="quarantined",
    )
    attachment = InboundAttachment.objects.create(
        message=message,
        municipality=city_a,
        inquiry=inquiry,
        filename="秘密の件名.txt",
        size=3,
        data=b"abc",
    )
    outbound = OutboundMessage.objects.create(
        municipality=city_a,
        inquiry=inquiry,
        kind="reply",
        message_id="<secret@example.jp>",
        from_address="otaru@example.jp",
        to_address=SECRET_EMAIL,
        subject="秘密の件名",
        body=SECRET_NAME,
        status="failed",
    )
    rule = TriageRule.objects.create(municipality=city_a, name="秘密の件名", keywords="破損")
    # A personal-data access row about city A (made by city A's own staff).
    viewer = UserFactory(role="agent", municipalities=[city_a])
    from crm.services import personal_data_access_record

    access = personal_data_access_record(
        user=viewer,
        action="view",
        record_type="donor",
        record_id=donor.id,
        municipality_id=city_a.id,
    )
    AgentPresence.objects.create(user=viewer, state="ringing", since=timezone.now())
    return {
        "user": viewer.id,
        "municipality": city_a.id,
        "donor": donor.id,
        "donation": shipment.donation_id,
        "shipment": shipment.id,
        "ticket": inquiry.pk,
        "inquiry": inquiry.pk,
        "call": call.id,
        "message": message.id,
        "attachment": attachment.id,
        "outbound": outbound.id,
        "rule": rule.id,
        "kind": "canned",
        "pk": canned.id,
        "access": access.id,
    }


def _city_a_state(city_a) -> tuple:
    inquiry = Inquiry.objects.get(municipality=city_a)
    return (
        FollowUp.objects.filter(ticket_id=inquiry.pk).count(),
        inquiry.status,
        inquiry.severity,
        inquiry.category_id,
        inquiry.ticket.assigned_to_id,
        Inquiry.objects.filter(municipality=city_a).count(),
        CannedReply.objects.filter(municipality=city_a).values_list("title", "body").first(),
        InboundMessage.objects.get(municipality=city_a).status,
        OutboundMessage.objects.get(municipality=city_a).status,
        TriageRule.objects.filter(municipality=city_a).count(),
        Call.objects.get(municipality=city_a).status,
        list(
            AgentPresence.objects.filter(user__municipalities=city_a).values_list("state", "reason")
        ),
    )


@pytest.fixture(params=["city_official_b", "agent_b"])
def outsider(request, city_b):
    if request.param == "agent_b":
        return UserFactory(username="agent_b", role="agent", municipalities=[city_b])
    return request.getfixturevalue("city_official_b")


def test_outsider_gets_nothing_of_city_a(login, outsider, city_a, city_a_records):
    client = login(outsider)
    before = _city_a_state(city_a)
    checked = 0
    for route, name in _walk(get_resolver().url_patterns):
        if name in SKIP:
            continue
        url = _url(route, city_a_records)
        if url is None:
            continue
        names_a_record = "<int:" in route or "(?P<pk>" in route
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            checked += 1
            if names_a_record:
                assert response.status_code in (403, 404, 405), (
                    f"{method.upper()} {url} answered {response.status_code}"
                )
            body = _body(response)
            for secret in SECRETS:
                assert secret not in body, f"{method.upper()} {url} shows city A's {secret}"
    assert checked > 50
    assert _city_a_state(city_a) == before, "a POST changed city A's records"
