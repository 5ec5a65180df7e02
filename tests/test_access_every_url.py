"""A city official, an agent and a supervisor of city B get nothing of city A from any URL or
websocket.

The URL list is read from the resolver and the websocket list from config.routing, so a page, API
endpoint or socket added later is covered without editing this test. Each path parameter is
filled with the id of a record of city A, and so is every query parameter and form field a view
reads (``?call=``, ``?municipality=``, ``?donor=`` …); POSTs are sent empty and with a valid body
whose references point at city A. Every answer must be a refusal (or, for pages without path
parameters, must not show any of city A's identifying strings), and nothing of city A may change.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from helpdesk.models import FollowUp

from administration.handover.models import HandoverDeletion, HandoverExport
from analysis import services as analysis_services
from analysis.models import MonthlyReport
from analysis.periods import Month
from config.asgi import application
from config.routing import websocket_urlpatterns
from crm.models import CityContact, Donor, PersonalDataAccess, User
from donations_sync.imports import PRESETS
from donations_sync.live import import_run_group
from donations_sync.models import (
    CoreChange,
    DonorCallback,
    ImportMapping,
    ImportRejection,
    ImportRun,
    OutboxMessage,
    Shipment,
)
from escalation import services as escalation_services
from escalation.models import CityInstruction, Escalation, EscalationNotification, EscalationRule
from knowledge.models import Article, CannedReply
from reshipments.models import (
    CallbackAttempt,
    Reshipment,
    ReshipmentSettings,
    ReturnedImport,
    ReturnedItem,
)
from telephony.events import agent_group, wallboard_group
from telephony.models import AgentPresence, Call, Disposition
from tests.conftest import login_as, response_bytes
from tests.factories import (
    DonorEmailFactory,
    DonorPhoneFactory,
    GiftItemFactory,
    ProviderFactory,
    ShipmentFactory,
    UserFactory,
)
from tickets import services as ticket_services
from tickets.consumers import group_name as presence_group
from tickets.live import console_group
from tickets.mail.models import (
    InboundAttachment,
    InboundMessage,
    MunicipalityMailSettings,
    OutboundMessage,
    TriageRule,
)
from tickets.models import Category, Draft, Inquiry, Mention, SavedView, SlaTarget, Status

pytestmark = pytest.mark.django_db

SECRET_NAME = "秘密川 一郎"
SECRET_EMAIL = "secret-donor@example.jp"
SECRET_PHONE = "+819011112222"
SECRETS = (SECRET_NAME, SECRET_EMAIL, "090-1111-2222", SECRET_PHONE, "秘密の件名")
# Sockets carry no page chrome that could name other cities legitimately: city A's name too.
SOCKET_SECRETS = (*SECRETS, "小樽市")

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
        "escalation_rule",
        "escalation",
        "notification",
        "municipality",
        "donor",
        "ticket",
        "inquiry",
        "callback",  # before "call", which it contains
        "call",
        "run",
        "mapping",
        "reshipment",  # before "shipment", which it contains
        "shipment",
        "returned",
        "outbox",  # before "message"
        "message",
        "outbound",
        "rule",
        "attachment",
        "kind",
        "user",
        "change",
        "report",
        "export",
        "deletion",
        "provider",
        "view",
        "target",
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
def city_a_records(city_a, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path  # the import run's stored file
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
    disposition, _ = Disposition.objects.get_or_create(code="done", defaults={"name": "対応済"})
    category = Category.objects.filter(active=True).first()
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
    raw = f"寄附者番号,氏名\r\nD-1,{SECRET_NAME}\r\n".encode("cp932")
    run = ImportRun.objects.create(
        municipality=city_a,
        style="choice",
        mapping=PRESETS["choice"],
        raw_file=ContentFile(raw, name="secret.csv"),
        original_name="秘密の件名.csv",
        detected_encoding="cp932",
        status=ImportRun.Status.DONE,
        rejected=1,
        unknown_columns=["秘密の件名"],
    )
    ImportRejection.objects.create(run=run, line=2, reason=SECRET_NAME, raw=["D-1", SECRET_NAME])
    mapping = ImportMapping.objects.create(
        municipality=city_a, style="choice", name="秘密の件名", mapping=PRESETS["choice"]
    )
    callback = DonorCallback.objects.create(
        municipality=city_a,
        donor=donor,
        donation=shipment.donation,
        run=run,
        reasons=["秘密の件名"],
    )
    # A change from the core kept as 保留 for city A (its data names the donor).
    core_change = CoreChange.objects.create(
        change_id="secret-change",
        kind="donation",
        municipality=city_a,
        municipality_code=city_a.code,
        source=CoreChange.Source.PUSH,
        outcome=CoreChange.Outcome.QUARANTINED,
        reason="秘密の件名",
        payload={"id": "secret-change", "data": {"name": SECRET_NAME, "email": SECRET_EMAIL}},
    )
    # A decision for the core, dead-lettered, whose payload names the donor.
    outbox_message = OutboxMessage.objects.create(
        municipality=city_a,
        kind=OutboxMessage.Kind.RESHIPMENT,
        payload={"name": SECRET_NAME, "email": SECRET_EMAIL},
        idempotency_key="secret-outbox",
        shipment=shipment,
        donation=shipment.donation,
        status=OutboxMessage.Status.DEAD,
        attempts=15,
        last_error="秘密の件名",
    )
    # A re-shipment waiting for city A's own approval, and a returned letter to call back.
    ReshipmentSettings.objects.create(municipality=city_a, city_approval_required=True)
    reshipment = Reshipment.objects.create(
        municipality=city_a,
        inquiry=inquiry,
        original=shipment,
        reason="damaged",
        fault="carrier",
        billable_to_city=False,
        gift_item=shipment.gift_item,
        ship_to_name=SECRET_NAME,
        ship_to_postal_code="0470032",
        ship_to_address="秘密の件名",
        ship_to_phone=SECRET_PHONE,
        status=Reshipment.Status.CITY_PENDING,
        city_approval_required=True,
        requested_at=timezone.now(),
        note="秘密の件名",
    )
    reshipment.photos.set([attachment])
    returned = ReturnedItem.objects.create(
        municipality=city_a,
        donor=donor,
        donation=shipment.donation,
        kind=ReturnedItem.Kind.RECEIPT,
        returned_on=timezone.localdate(),
        note="秘密の件名",
        source=ReturnedItem.Source.FORM,
    )
    ReturnedImport.objects.create(
        municipality=city_a,
        original_name="秘密の件名.csv",
        rejections=[{"line": 2, "reason": "x", "raw": [SECRET_NAME]}],
    )
    escalation_rule = EscalationRule.objects.create(
        municipality=city_a, name="秘密の件名", kind="damaged_gift", severities=["urgent"]
    )
    CityContact.objects.create(
        municipality=city_a, name=SECRET_NAME, department="秘密の件名", phone=SECRET_PHONE
    )
    escalation = escalation_services.escalation_open(
        actor=None,
        inquiry=inquiry,
        kind="damaged_gift",
        source="manual",
        reason="秘密の件名",
        urgent=True,
    )
    notification = EscalationNotification.objects.filter(escalation=escalation).first()
    # City A's monthly report, submitted (the state a city official of A could read it in).
    month = Month.containing(timezone.now())
    report = analysis_services.report_generate(municipality=city_a, month=month)
    report.state, report.measures, report.comments = "submitted", "秘密の件名", "秘密の件名"
    report.save()
    export = HandoverExport.objects.create(
        municipality=city_a, municipality_code=city_a.code, municipality_name=city_a.name
    )
    deletion = HandoverDeletion.objects.create(
        municipality=city_a,
        municipality_code=city_a.code,
        municipality_name=city_a.name,
        requested_by_name="x",
    )
    provider = ProviderFactory(municipality=city_a, name=SECRET_NAME, phone=SECRET_PHONE)
    GiftItemFactory(municipality=city_a, provider=provider, name="秘密の件名")
    ticket_services.inquiry_link_records(actor=viewer, inquiry=inquiry, provider=provider)
    saved_view = SavedView.objects.create(user=viewer, name="秘密の件名", query="q=秘密")
    sla_target = SlaTarget.objects.create(
        municipality=city_a, category=None, first_response_minutes=60, resolution_minutes=480
    )
    return {
        "provider": provider.id,
        "view": saved_view.id,
        "target": sla_target.id,
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
        "report": report.id,
        "user": viewer.id,
        "run": run.id,
        "mapping": mapping.id,
        "callback": callback.id,
        "change": core_change.id,
        "outbox": outbox_message.id,
        "reshipment": reshipment.id,
        "returned": returned.id,
        "disposition": disposition.code,
        "category": category.code if category else "",
        "escalation": escalation.id,
        "escalation_rule": escalation_rule.id,
        "notification": notification.id,
        "export": export.id,
        "deletion": deletion.id,
    }


def _valid_fields(records: dict[str, Any]) -> dict[str, Any]:
    """Every query parameter and form field the views and forms read (grep request.GET,
    request.POST, query_params and the forms), each valid, and each reference one of city A's."""
    return {
        # References to city A's records.
        "municipality": records["municipality"],
        "m": records["municipality"],
        "donor": records["donor"],
        "donation": records["donation"],
        "donations": [records["donation"]],
        "shipment": records["shipment"],
        "shipments": [records["shipment"]],
        "call": records["call"],
        "ticket": records["ticket"],
        "provider": records["provider"],
        "operation": "assign",
        "assignee": records["user"],
        "first_response_hours": "1",
        "resolution_hours": "2",
        "query": "q=秘密",
        "inquiry": records["ticket"],
        "user": records["user"],
        "agent": records["user"],
        "assigned_to": records["user"],
        "into": records["ticket"],
        "keep": "this",
        "macro": records["pk"],
        "then": "resolve",
        "disposition": records["disposition"],
        # A word of city A's ticket, not itself one of the strings the answers must not show.
        "q": "秘密",
        "open": "1",
        # Valid values for everything else, so that forms get past validation.
        "category": records["category"],
        "channel": "phone",
        "requester_type": "donor",
        "severity": "high",
        "status": Status.CLOSED,
        "state": "available",
        "next_state": "available",
        "kind": "note",
        "title": "外部からの件名",
        "description": "外部からの内容",
        "body": "外部からの本文",
        "comment": "外部からのコメント",
        "note": "外部からのメモ",
        "share_with_city": "on",
        "operator_only": "false",
        "name": "外部のルール",
        "keywords": "外部",
        "category_code": "",
        "sort_order": 1,
        "active": "on",
        "is_active": "on",
        "acknowledgement_enabled": "on",
        "acknowledgement_subject": "外部",
        "acknowledgement_body": "外部",
        "to": "03-1234-5678",
        "type": "donor",
        "action": "view",
        "page": "1",
        "attempt": "1",
        # Escalation: a report, an instruction, a rule that would point at city A.
        "mode": "report",
        "reason": "外部からの報告",
        "outcome": "外部からの完了",
        "rule": records["escalation_rule"],
        "Digits": "1",
        "next": "/",
        # The import pages' forms.
        "style": "choice",
        "saved_mapping": records["mapping"],
        "encoding": "cp932",
        "donation__amount": "寄附金額",
        "month": Month.containing(timezone.now()).key(),
        "measures": "外部からの方策",
        "comments": "外部からの所見",
        # Re-shipments and returned mail.
        "original": records["shipment"],
        "fault": "donor",
        "gift_item": "",
        "photos": [records["attachment"]],
        "address_mode": "corrected",
        "ship_to_name": "外部の氏名",
        "ship_to_postal_code": "1000001",
        "ship_to_address": "外部の住所",
        "ship_to_phone": "03-1234-5678",
        "desired_date": "2026-12-24",
        "desired_time_slot": "am",
        "gift_cost": "1000",
        "shipping_cost": "1000",
        "city_approval_required": "",
        "number": "987654-20241201-00000000",
        "returned_on": "2026-11-20",
        "tracking_number": "",
        "postal_code": "1000001",
        "address": "外部の住所",
        "submit": "1",
    }


def _city_a_state(city_a) -> tuple:
    inquiry = Inquiry.objects.get(municipality=city_a)
    call = Call.objects.get(municipality=city_a)
    return (
        inquiry.donor_id,
        list(inquiry.shipments.values_list("pk", flat=True)),
        call.inquiry_id,
        call.disposition_id,
        list(Donor.objects.filter(municipality=city_a).values_list("name", "name_kana")),
        CannedReply.objects.filter(municipality=city_a).count(),
        Article.objects.filter(municipality=city_a).count(),
        MunicipalityMailSettings.objects.filter(municipality=city_a).count(),
        PersonalDataAccess.objects.filter(municipality_id=city_a.id).count(),
        FollowUp.objects.filter(ticket_id=inquiry.pk).count(),
        inquiry.status,
        inquiry.severity,
        inquiry.category_id,
        inquiry.ticket.assigned_to_id,
        inquiry.provider_id,
        list(SlaTarget.objects.filter(municipality=city_a).values_list("pk", "resolution_minutes")),
        list(
            SavedView.objects.filter(user__municipalities=city_a).values_list("pk", "name", "query")
        ),
        Inquiry.objects.get(pk=inquiry.pk).ticket.title,
        Draft.objects.filter(municipality=city_a).count(),
        Mention.objects.filter(municipality=city_a).count(),
        Inquiry.objects.filter(municipality=city_a).count(),
        CannedReply.objects.filter(municipality=city_a).values_list("title", "body").first(),
        InboundMessage.objects.get(municipality=city_a).status,
        OutboundMessage.objects.get(municipality=city_a).status,
        TriageRule.objects.filter(municipality=city_a).count(),
        Call.objects.get(municipality=city_a).status,
        list(
            AgentPresence.objects.filter(user__municipalities=city_a).values_list("state", "reason")
        ),
        ImportRun.objects.filter(municipality=city_a).count(),
        list(ImportMapping.objects.filter(municipality=city_a).values_list("name", "mapping")),
        list(
            DonorCallback.objects.filter(municipality=city_a).values_list("resolved_at", "outcome")
        ),
        list(CoreChange.objects.filter(municipality=city_a).values_list("outcome", "attempts")),
        list(
            OutboxMessage.objects.filter(municipality=city_a).values_list(
                "status", "attempts", "next_attempt_at"
            )
        ),
        list(Escalation.objects.filter(municipality=city_a).values_list("status", "outcome")),
        list(
            Reshipment.objects.filter(municipality=city_a).values_list(
                "status", "replacement_id", "city_comment", "refusal_comment"
            )
        ),
        Reshipment.objects.count(),
        list(ReshipmentSettings.objects.values_list("municipality_id", "city_approval_required")),
        list(ReturnedItem.objects.filter(municipality=city_a).values_list("status", "kind")),
        ReturnedItem.objects.count(),
        CallbackAttempt.objects.count(),
        ReturnedImport.objects.count(),
        Shipment.objects.filter(municipality=city_a).count(),
        CityInstruction.objects.filter(municipality=city_a).count(),
        list(EscalationRule.objects.filter(municipality=city_a).values_list("name", "active")),
        Escalation.objects.count(),
        list(
            MonthlyReport.objects.filter(municipality=city_a).values_list(
                "state", "comments", "measures", "generated_at"
            )
        ),
    )


@pytest.fixture(params=["city_official_b", "agent_b", "supervisor_b"])
def outsider(request, city_b):
    if request.param == "agent_b":
        return UserFactory(username="agent_b", role="agent", municipalities=[city_b])
    if request.param == "supervisor_b":
        return UserFactory(
            username="supervisor_b", role=User.Role.SUPERVISOR, municipalities=[city_b]
        )
    return request.getfixturevalue("city_official_b")


def _requests(url: str, fields: dict[str, Any]):
    """Each way a URL is asked: bare, and with city A's ids in the query string and the body."""
    yield "GET", url, None
    yield "GET", url, fields
    yield "POST", url, None
    yield "POST", url, fields


def _a_record_paths(records: dict[str, Any]) -> tuple[str, ...]:
    return (
        f"/tickets/{records['ticket']}/",
        f"/donors/{records['donor']}/",
        f"/telephony/calls/{records['call']}/",
        f"/providers/{records['provider']}/",
    )


def test_outsider_gets_nothing_of_city_a(login, outsider, city_a, city_a_records):
    client = login(outsider)
    fields = _valid_fields(city_a_records)
    a_paths = _a_record_paths(city_a_records)
    before = _city_a_state(city_a)
    checked = 0
    for route, name in _walk(get_resolver().url_patterns):
        if name in SKIP:
            continue
        url = _url(route, city_a_records)
        if url is None:
            continue
        names_a_record = "<int:" in route or "(?P<pk>" in route
        for method, target, data in _requests(url, fields):
            if method == "GET":
                response = client.get(target, data)
            else:
                response = client.post(target, data or {})
            checked += 1
            asked = f"{method} {target} {'with' if data else 'without'} city A's ids"
            if names_a_record:
                assert response.status_code in (403, 404, 405), (
                    f"{asked} answered {response.status_code}"
                )
            body = _body(response)
            for secret in SECRETS:
                assert secret not in body, f"{asked} shows city A's {secret}"
            location = response.get("Location", "")
            assert not location.startswith(a_paths), f"{asked} leads to {location}"
    assert checked > 200
    assert _city_a_state(city_a) == before, "a POST changed city A's records"


# --- Websockets ----------------------------------------------------------------------------------


def _ws_path(route: str, records: dict[str, Any]) -> str:
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: _path_param(m.group(1), records), route)
    query = f"municipality={records['municipality']}&call={records['call']}"
    return f"/{path.lstrip('/')}?{query}&donor={records['donor']}&ticket={records['ticket']}"


def _session_cookie(user: User) -> str:
    client = login_as(Client(), user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def _city_a_events(records: dict[str, Any], outsider: User) -> None:
    """What city A's own people would be sent, and a forged ring of A's call to the outsider."""
    layer = get_channel_layer()
    municipality = records["municipality"]
    await layer.group_send(
        console_group(municipality), {"type": "tickets.changed", "municipality_id": municipality}
    )
    await layer.group_send(wallboard_group(municipality), {"type": "wallboard.changed"})
    await layer.group_send(
        presence_group(records["ticket"]),
        {"type": "presence.update", "conn": "a", "name": SECRET_NAME, "state": "viewing"},
    )
    await layer.group_send(
        import_run_group(records["run"]),
        {"type": "import.progress", "run_id": records["run"], "status_label": SECRET_NAME},
    )
    for kind in ("call.ring", "call.update"):
        await layer.group_send(agent_group(outsider.pk), {"type": kind, "call_id": records["call"]})


async def _everything_sent(comm: WebsocketCommunicator, quiet: float = 0.5) -> list[dict]:
    """Reads until the socket closes or stays quiet for ``quiet`` seconds (waiting that long on
    purpose: nothing more arriving is what is being shown)."""
    sent = []
    while not await comm.receive_nothing(timeout=quiet):
        output = await comm.receive_output()
        sent.append(output)
        if output["type"] == "websocket.close":
            break
    return sent


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_outsider_hears_nothing_of_city_a_on_any_socket(outsider, city_a, city_a_records):
    cookie = await sync_to_async(_session_cookie)(outsider)
    routes = [str(pattern.pattern) for pattern in websocket_urlpatterns]
    assert len(routes) >= 4
    for route in routes:
        path = _ws_path(route, city_a_records)
        comm = WebsocketCommunicator(
            application,
            path,
            headers=[
                (b"origin", b"http://testserver"),
                (b"host", b"testserver"),
                (b"cookie", cookie.encode()),
            ],
        )
        connected, _ = await comm.connect(timeout=5)
        sent = []
        if connected:
            sent = await _everything_sent(comm)
            if not any(m["type"] == "websocket.close" for m in sent):
                await _city_a_events(city_a_records, outsider)
                sent += await _everything_sent(comm)
        for message in sent:
            if not message.get("text"):
                continue  # accept, close
            payload = json.loads(message["text"])
            text = json.dumps(payload, ensure_ascii=False)
            for secret in SOCKET_SECRETS:
                assert secret not in text, f"{path} sent city A's {secret}: {text}"
            assert payload.get("municipality_id") != city_a.id, f"{path} sent {text}"
            assert city_a.id not in payload.get("municipality_ids", []), f"{path} sent {text}"
            if payload.get("type") in ("pop", "call"):
                call = payload.get("call") or {}
                assert call.get("id") != city_a_records["call"], f"{path} sent {text}"
        if connected:
            await comm.disconnect()
