"""The REST API: same services, same access policy and the access log, through HTTP."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from helpdesk.models import FollowUp

from crm.models import PersonalDataAccess
from tests.conftest import response_bytes
from tests.factories import DonationFactory, DonorFactory, ShipmentFactory
from tickets import services
from tickets.models import Inquiry, InquiryEvent, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def records_a(city_a):
    shipment = ShipmentFactory(donation__donor__municipality=city_a)
    return shipment.donation.donor, shipment.donation, shipment


@pytest.fixture
def ticket_a(open_inquiry, records_a):
    donor, donation, shipment = records_a
    inquiry = open_inquiry(donor=donor, donations=[donation], shipments=[shipment])
    services.inquiry_add_note(actor=inquiry.events.get().actor, inquiry=inquiry, body="社内のみ")
    return inquiry


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_agent_creates_and_works_a_ticket(login, agent_a, city_a, records_a, supervisor):
    client = login(agent_a)
    donor, donation, shipment = records_a
    response = client.post(
        "/api/tickets/",
        {
            "municipality": city_a.pk,
            "channel": "phone",
            "title": "配達日を変更したい",
            "description": "年末は不在",
            "category": "delivery_change",
            "donor": donor.pk,
            "donations": [donation.pk],
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    ticket_id = response.json()["id"]
    assert response.json()["category"] == "delivery_change"
    url = f"/api/tickets/{ticket_id}/"
    for path, body in [
        ("reply/", {"body": "承知しました"}),
        ("notes/", {"body": "再配達依頼済", "operator_only": False}),
        ("severity/", {"severity": "high"}),
        ("category/", {"category": "shipping_status"}),
        ("assign/", {"assignee": supervisor.pk}),
        ("link/", {"shipments": [shipment.pk]}),
        ("status/", {"status": Status.RESOLVED}),
    ]:
        response = client.post(url + path, body, content_type="application/json")
        assert response.status_code == 200, (path, response.content)
    detail = response.json()
    assert detail["status"] == Status.RESOLVED
    assert detail["severity"] == "high"
    assert detail["assigned_to"] == supervisor.pk
    assert detail["shipments"] == [shipment.pk]
    assert [f["kind"] for f in detail["followups"]] == [
        "opened",
        "reply",
        "note",
        "severity",
        "category",
        "assign",
        "link",
        "status",
    ]
    assert FollowUp.objects.filter(ticket_id=ticket_id).count() == 8


def test_schema_is_served(login, agent_a):
    response = login(agent_a).get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/tickets/{ticket}/reply/" in response.content


def test_schema_needs_an_operator_who_passed_2fa(client: Client, login, agent_a, city_official_b):
    assert client.get("/api/schema/").status_code == 403  # anonymous
    client.force_login(agent_a)  # password only, no TOTP yet
    assert client.get("/api/schema/").status_code == 403
    # City officials log in with a password alone; the API map is not theirs to read.
    assert login(city_official_b).get("/api/schema/").status_code == 403


def test_operator_without_2fa_is_refused(client: Client, agent_a, ticket_a):
    client.force_login(agent_a)
    response = client.get("/api/tickets/")
    assert response.status_code == 403


def test_anonymous_is_refused(client: Client, ticket_a):
    assert client.get("/api/tickets/").status_code == 403


def test_list_filters_and_search(login, agent_a, ticket_a, open_inquiry):
    other = open_inquiry(title="ワンストップ申請書を送りたい", severity="urgent")
    client = login(agent_a)
    assert {r["id"] for r in results(client.get("/api/tickets/"))} == {ticket_a.pk, other.pk}
    assert [r["id"] for r in results(client.get("/api/tickets/?q=申請"))] == [other.pk]
    assert [r["id"] for r in results(client.get("/api/tickets/?severity=urgent"))] == [other.pk]
    services.inquiry_change_status(actor=agent_a, inquiry=other, status=Status.CLOSED)
    assert [r["id"] for r in results(client.get("/api/tickets/"))] == [ticket_a.pk]
    assert len(results(client.get("/api/tickets/?status=all"))) == 2


def test_city_official_reads_own_city_without_operator_only_notes(login, city_official_a, ticket_a):
    client = login(city_official_a)
    assert [r["id"] for r in results(client.get("/api/tickets/"))] == [ticket_a.pk]
    detail = client.get(f"/api/tickets/{ticket_a.pk}/").json()
    assert all(not f["operator_only"] for f in detail["followups"])
    assert "社内のみ" not in str(detail)
    assert InquiryEvent.objects.filter(inquiry=ticket_a, operator_only=True).exists()


def test_city_official_cannot_write(login, city_official_a, ticket_a, city_a):
    client = login(city_official_a)
    url = f"/api/tickets/{ticket_a.pk}/"
    for path, body in [("reply/", {"body": "x"}), ("notes/", {"body": "x"})]:
        assert client.post(url + path, body, content_type="application/json").status_code == 403
    response = client.post(
        "/api/tickets/",
        {"municipality": city_a.pk, "channel": "phone", "title": "x"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert ticket_a.events.count() == 2


def test_city_b_sees_nothing_of_city_a(login, city_official_b, ticket_a, records_a):
    donor, donation, shipment = records_a
    client = login(city_official_b)
    for kind, pk in [
        ("tickets", ticket_a.pk),
        ("donors", donor.pk),
        ("donations", donation.pk),
        ("shipments", shipment.pk),
    ]:
        assert results(client.get(f"/api/{kind}/?status=all")) == [], kind
        assert client.get(f"/api/{kind}/{pk}/").status_code == 404, kind
    assert (
        results(client.get(f"/api/tickets/?status=all&municipality={ticket_a.municipality_id}"))
        == []
    )
    assert client.post(
        f"/api/tickets/{ticket_a.pk}/reply/", {"body": "x"}, content_type="application/json"
    ).status_code in (403, 404)


def test_agent_cannot_attach_or_open_for_another_city(login, agent_a, city_b, ticket_a):
    foreign = DonationFactory(donor=DonorFactory(municipality=city_b))
    client = login(agent_a)
    response = client.post(
        f"/api/tickets/{ticket_a.pk}/link/",
        {"donations": [foreign.pk]},
        content_type="application/json",
    )
    assert response.status_code == 400
    response = client.post(
        "/api/tickets/",
        {"municipality": city_b.pk, "channel": "phone", "title": "x"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert not Inquiry.objects.filter(municipality=city_b).exists()


def test_donor_donation_shipment_reads(login, agent_a, records_a):
    donor, donation, shipment = records_a
    client = login(agent_a)
    assert client.get(f"/api/donors/{donor.pk}/").json()["name"] == donor.name
    assert [r["id"] for r in results(client.get(f"/api/donations/?donor={donor.pk}"))] == [
        donation.pk
    ]
    body = client.get(f"/api/shipments/{shipment.pk}/").json()
    assert body["tracking_url"].endswith(shipment.tracking_number)


def test_every_retrieval_is_logged(login, agent_a, ticket_a, records_a):
    donor, donation, shipment = records_a
    client = login(agent_a)
    client.get(f"/api/donors/{donor.pk}/")
    client.get(f"/api/tickets/{ticket_a.pk}/")
    client.get("/api/donations/")
    client.get(f"/api/shipments/{shipment.pk}/")
    rows = PersonalDataAccess.objects.filter(user=agent_a).order_by("id")
    assert [(r.record_type, r.record_id, r.action) for r in rows] == [
        ("donor", str(donor.pk), "api"),
        ("ticket", str(ticket_a.pk), "api"),
        ("donation", "", "api"),
        ("shipment", str(shipment.pk), "api"),
    ]
    assert rows[2].detail["ids"] == [donation.pk]
    assert rows[0].municipality_id == donor.municipality_id
    assert rows[0].path == f"/api/donors/{donor.pk}/"


def test_refused_retrieval_is_not_logged_as_access(login, city_official_b, records_a):
    donor, _, _ = records_a
    login(city_official_b).get(f"/api/donors/{donor.pk}/")
    assert not PersonalDataAccess.objects.filter(record_id=str(donor.pk)).exists()


def test_access_log_export_is_admin_only_and_logged(login, operator_admin, agent_a, records_a):
    donor, _, _ = records_a
    login(agent_a).get(f"/api/donors/{donor.pk}/")
    assert login(agent_a).get("/api/personal-data-access/export/").status_code == 403

    admin = login(operator_admin)
    listed = results(admin.get("/api/personal-data-access/"))
    assert listed[0]["record_type"] == "donor" and listed[0]["username"] == "agent_a"
    response = admin.get("/api/personal-data-access/export/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    # The page's CSV (one definition): same columns, file name and record of the export.
    assert response["Content-Disposition"].startswith('attachment; filename="access-log-')
    text = response_bytes(response).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["日時", "利用者", "操作"]
    assert rows[0][8:10] == ["利用者ID", "自治体ID"]
    assert [r[3] for r in rows[1:]] == ["access_log.csv", "donor"]
    assert rows[1][2] == "出力"
    export_row = PersonalDataAccess.objects.get(record_type="access_log.csv")
    assert export_row.user == operator_admin and export_row.action == "export"
