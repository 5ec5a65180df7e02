"""Monthly analysis benchmark: a year of tickets, calls and the donation mirror; prints timings.

    export DEBUG=false SECRET_KEY=benchmark-only-secret TWILIO_AUTH_TOKEN=benchmark-only-token
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fz_analysis_bench \\
        .venv/bin/python -m benchmarks.analysis [--tickets 1000000] [--donations 2000000] \\
        [--calls 600000] [--skip-load] [--helpdesk]

Loads (with COPY, once; later runs reuse what is there) 30 municipalities' twelve months up to
the end of last month: tickets (helpdesk Ticket + our Inquiry, categories, channels, requester
types, first response and resolution times, complaints linked to shipments), inbound and call-back
calls, donations and one shipment each. Then measures, for the last full month:

- one city-month report (``monthly_report_data``), target ≤ 2 s;
- every municipality's monthly generation (``reports_generate_all``), target ≤ 60 s;
- the PDF of one report (WeasyPrint), target ≤ 5 s;
- with ``--helpdesk``: django-helpdesk's report index and its queue × month report on the same
  rows (the views we do not use), once each.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from analysis import exports, services  # noqa: E402
from analysis.models import MonthlyReport  # noqa: E402
from analysis.periods import Month  # noqa: E402
from analysis.selectors import monthly_report_data  # noqa: E402
from benchmarks.tickets import (  # noqa: E402
    CARRIERS,
    GIFTS,
    SENTENCES,
    TITLES,
    _copy,
    _max_id,
    _text,
    ensure_donors,
    ensure_municipalities,
    ensure_users,
)
from crm.models import Carrier, Municipality, Provider  # noqa: E402
from donations_sync.models import Donation, GiftItem  # noqa: E402
from telephony.calendar_services import business_calendar_apply_preset  # noqa: E402
from telephony.models import Call, WeeklyHours  # noqa: E402
from tickets.models import SEVERITY_PRIORITY, Category, Inquiry, MunicipalityQueue  # noqa: E402

TOKYO = ZoneInfo("Asia/Tokyo")
CHUNK = 50_000
GIFTS_PER_CITY = 20
PORTAL_CODES = ["choice", "rakuten", "satofull", "furunavi", "ana"]
COMPLAINT_CODES = ("damaged", "wrong_missing", "shipping_status")
# Hours of the day inquiries come in (weights), busiest late morning.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 1, 2, 4, 8, 14, 16, 15, 11, 13, 14, 13, 11, 9, 7, 5, 4, 3, 2, 1]


def _year() -> tuple[Month, Month]:
    last = Month.containing(datetime.datetime.now(TOKYO)).previous()
    first = last
    for _ in range(11):
        first = first.previous()
    return first, last


def _moment(rng: random.Random, start: datetime.datetime, days: int) -> datetime.datetime:
    day = rng.randrange(days)
    hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
    return start + datetime.timedelta(days=day, hours=hour, seconds=rng.randrange(3600))


def ensure_reference(municipalities: list[Municipality]) -> dict[int, list[tuple[int, int]]]:
    """Calendars, providers, gift items and carriers; returns (gift id, provider id) per city."""
    carriers = []
    for i, name in enumerate(CARRIERS[:3]):
        carrier, _ = Carrier.objects.get_or_create(
            code=f"bench{i}",
            defaults={
                "name": name,
                "short_name": name[:2],
                "tracking_url_template": "https://example.invalid/{number}",
                "tracking_rule": Carrier.TrackingRule.MOD7_12,
            },
        )
        carriers.append(carrier)
    gifts: dict[int, list[tuple[int, int]]] = {}
    for m in municipalities:
        if not WeeklyHours.objects.filter(municipality=m).exists():
            business_calendar_apply_preset(municipality=m, preset="weekdays")
        if not GiftItem.objects.filter(municipality=m).exists():
            providers = [
                Provider.objects.create(municipality=m, code=f"BP{k}", name=f"{m.name}事業者{k}")
                for k in range(5)
            ]
            GiftItem.objects.bulk_create(
                GiftItem(
                    municipality=m,
                    provider=providers[k % 5],
                    code=f"BG{k:03d}",
                    name=f"{GIFTS[k % len(GIFTS)]}（{m.name}）",
                )
                for k in range(GIFTS_PER_CITY)
            )
        gifts[m.pk] = list(GiftItem.objects.filter(municipality=m).values_list("id", "provider_id"))
    return gifts


def load_mirror(
    target: int, municipalities: list[Municipality], donors: dict[int, list[int]], gifts
) -> None:
    have = Donation.objects.count()
    if have >= target:
        print(f"reusing {have:,} donations")
        return
    todo = target - have
    first, last = _year()
    start, days = first.start, (last.end - first.start).days
    carriers = list(Carrier.objects.filter(code__startswith="bench").values_list("id", flat=True))
    rng = random.Random(have)
    donation_id = _max_id("donations_sync_donation") + 1
    shipment_id = _max_id("donations_sync_shipment") + 1
    print(f"adding {todo:,} donations and shipments with COPY …", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET synchronous_commit = off")
    done = 0
    mids = [m.pk for m in municipalities]
    while done < todo:
        n = min(CHUNK, todo - done)
        donations, shipments = [], []
        for _ in range(n):
            mid = rng.choice(mids)
            at = _moment(rng, start, days)
            local = at.astimezone(TOKYO).date()
            paid = local + datetime.timedelta(days=rng.randint(0, 5))
            status = "cancelled" if rng.random() < 0.01 else "paid"
            one_stop = rng.random() < 0.4
            donations.append(
                (
                    donation_id, mid, rng.choice(donors[mid]), rng.choice(PORTAL_CODES), "", "",
                    at, paid, rng.choice([5000, 10000, 10000, 12000, 20000, 30000, 50000]),
                    "credit_card", one_stop,
                    paid + datetime.timedelta(days=rng.randint(5, 30)) if one_stop else None,
                    paid + datetime.timedelta(days=rng.randint(7, 20)), False, status, "", at,
                )
            )  # fmt: skip
            shipped = local + datetime.timedelta(days=rng.randint(3, 40))
            roll = rng.random()
            ship_status = "delivered" if roll < 0.9 else "returned" if roll < 0.92 else "shipped"
            gift, _ = rng.choice(gifts[mid])
            shipments.append(
                (
                    shipment_id, mid, donation_id, gift, 1, "寄附者", "", "0000000", "北海道",
                    "", None, "", rng.choice(carriers), "", shipped,
                    shipped + datetime.timedelta(days=rng.randint(1, 3))
                    if ship_status == "delivered" else None,
                    ship_status, None, at,
                )
            )  # fmt: skip
            donation_id += 1
            shipment_id += 1
        _copy(
            "donations_sync_donation",
            "id, municipality_id, donor_id, portal, portal_order_number, external_id, "
            "donated_at, paid_on, amount, payment_method, one_stop_requested, "
            "one_stop_received_on, receipt_issued_on, gift_declined, status, note, updated_at",
            donations,
        )
        _copy(
            "donations_sync_shipment",
            "id, municipality_id, donation_id, gift_item_id, delivery_number, ship_to_name, "
            "ship_to_kana, ship_to_postal_code, ship_to_address, ship_to_phone, desired_date, "
            "desired_time_slot, carrier_id, tracking_number, shipped_on, delivered_on, status, "
            "replaces_id, updated_at",
            shipments,
        )
        done += n
        print(f"  {have + done:,} donations ({done / (time.perf_counter() - started):,.0f}/s)",
              flush=True)  # fmt: skip
    _finish(["donations_sync_donation", "donations_sync_shipment"])


def load_tickets(target: int, municipalities: list[Municipality], donors, agents) -> None:
    have = Inquiry.objects.count()
    if have >= target:
        print(f"reusing {have:,} tickets")
        return
    todo = target - have
    first, last = _year()
    start, days = first.start, (last.end - first.start).days
    now = datetime.datetime.now(TOKYO)
    rng = random.Random(have + 1)
    queues = dict(MunicipalityQueue.objects.values_list("municipality_id", "queue_id"))
    categories = dict(Category.objects.values_list("code", "id"))
    codes = list(categories)
    weights = [8 if c in COMPLAINT_CODES else 3 for c in codes]
    # Shipments per city as id ranges (complaints link to one of them).
    shipment_ids: dict[int, list[int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT municipality_id, array_agg(id) FROM (SELECT municipality_id, id FROM "
            "donations_sync_shipment TABLESAMPLE SYSTEM (5)) s GROUP BY municipality_id"
        )
        for mid, ids in cursor.fetchall():
            shipment_ids[mid] = ids
    servers = [a.pk for a in agents]
    ticket_id = _max_id("helpdesk_ticket") + 1
    link_id = _max_id("tickets_inquiry_shipments") + 1
    print(f"adding {todo:,} tickets with COPY …", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET synchronous_commit = off")
    done = 0
    mids = list(queues)
    while done < todo:
        n = min(CHUNK, todo - done)
        tickets, inquiries, links = [], [], []
        for _ in range(n):
            mid = rng.choice(mids)
            created = _moment(rng, start, days)
            code = rng.choices(codes, weights)[0]
            title = _text(rng, rng.choice(TITLES))
            description = "".join(
                _text(rng, rng.choice(SENTENCES)) for _ in range(rng.randint(1, 3))
            )
            first_response = (
                created + datetime.timedelta(minutes=rng.randint(5, 4000))
                if rng.random() < 0.85
                else None
            )
            resolved = created + datetime.timedelta(minutes=rng.randint(30, 15000))
            if resolved > now or rng.random() < 0.05:
                resolved, status = None, 1
            else:
                status = 4
            assignee = rng.choice(servers)
            tickets.append(
                (
                    ticket_id, title, queues[mid], created, created, None, assignee, status,
                    False, description, SEVERITY_PRIORITY["normal"],
                    str(uuid.UUID(int=rng.getrandbits(128))),
                )
            )  # fmt: skip
            inquiries.append(
                (
                    ticket_id, mid, rng.choices(["phone", "email", "fax", "web_form"],
                                                [60, 30, 3, 7])[0],
                    rng.choices(["donor", "prospective_donor", "provider", "other"],
                                [80, 10, 5, 5])[0],
                    assignee, categories[code], "normal", status, created,
                    resolved or first_response or created, first_response, resolved,
                    rng.choice(donors[mid]) if rng.random() < 0.7 else None, "", "", "",
                )
            )  # fmt: skip
            if code in COMPLAINT_CODES and shipment_ids.get(mid):
                links.append((link_id, ticket_id, rng.choice(shipment_ids[mid])))
                link_id += 1
            ticket_id += 1
        _copy(
            "helpdesk_ticket",
            "id, title, queue_id, created, modified, submitter_email, assigned_to_id, status, "
            "on_hold, description, priority, secret_key",
            tickets,
        )
        _copy(
            "tickets_inquiry",
            "ticket_id, municipality_id, channel, requester_type, assigned_to_id, category_id, "
            "severity, status, created_at, last_activity_at, first_response_at, resolved_at, "
            "donor_id, search_text, search_text_internal, requester_name",
            inquiries,
        )
        _copy("tickets_inquiry_shipments", "id, inquiry_id, shipment_id", links)
        done += n
        print(f"  {have + done:,} tickets ({done / (time.perf_counter() - started):,.0f}/s)",
              flush=True)  # fmt: skip
    _finish(["helpdesk_ticket", "tickets_inquiry", "tickets_inquiry_shipments"])


def load_calls(target: int, municipalities: list[Municipality]) -> None:
    have = Call.objects.count()
    if have >= target:
        print(f"reusing {have:,} calls")
        return
    todo = target - have
    first, last = _year()
    start, days = first.start, (last.end - first.start).days
    rng = random.Random(have + 2)
    call_id = _max_id("telephony_call") + 1
    mids = [m.pk for m in municipalities]
    print(f"adding {todo:,} calls with COPY …", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    done = 0
    sec = datetime.timedelta(seconds=1)
    while done < todo:
        n = min(CHUNK, todo - done)
        rows = []
        for _ in range(n):
            offered = _moment(rng, start, days)
            after_hours = not (9 <= offered.astimezone(TOKYO).hour < 17)
            direction, voicemail = "inbound", False
            answered = routed = wrapped = None
            queue = talk = None
            roll = rng.random()
            if rng.random() < 0.08:
                direction, status = "outbound", "completed"
                answered = offered + 8 * sec
                talk = rng.randint(30, 400)
                ended = answered + talk * sec
            elif after_hours:
                voicemail = roll < 0.3
                status = "voicemail" if voicemail else "after_hours_hangup"
                ended = offered + rng.randint(10, 90) * sec
            elif roll < 0.85:
                status, routed = "completed", offered + 15 * sec
                queue = rng.choice([2, 5, 10, 20, 25, 40, 60, 120])
                answered = routed + queue * sec
                talk = rng.randint(40, 900)
                ended = answered + talk * sec
                wrapped = ended + rng.randint(10, 120) * sec
            elif roll < 0.95:
                status, routed = "abandoned_queue", offered + 15 * sec
                queue = rng.randint(1, 180)
                ended = routed + queue * sec
            else:
                status = "abandoned_ivr"
                ended = offered + rng.randint(1, 20) * sec
            rows.append(
                (
                    call_id, mids[rng.randrange(len(mids))], direction, status, "", "", "",
                    after_hours, "", "", offered, routed, answered, ended, queue, talk, "", "",
                    voicemail, "[]", "", wrapped, -1,
                )
            )  # fmt: skip
            call_id += 1
        _copy(
            "telephony_call",
            "id, municipality_id, direction, status, from_raw, from_e164, to_e164, after_hours, "
            "ivr_digit, requester_type, offered_at, routed_at, answered_at, ended_at, "
            "queue_seconds, talk_seconds, recording_sid, recording_url, voicemail, "
            "matched_donor_ids, disposition_note, wrapped_up_at, last_sequence",
            rows,
        )
        done += n
    _finish(["telephony_call"])


def _finish(tables: list[str]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = DEFAULT")
        for table in tables:
            column = "ticket_id" if table == "tickets_inquiry" else "id"
            if column == "id":
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )
            cursor.execute(f"VACUUM ANALYZE {table}")


def timed(fn, runs: int = 1) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def helpdesk_reports(admin, month: Month) -> None:
    """django-helpdesk's own report views on the same rows (superuser: every queue)."""
    from django.conf import settings
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory
    from django.urls import clear_url_caches
    from helpdesk.views import staff

    settings.ROOT_URLCONF = "benchmarks.helpdesk_urls"
    clear_url_caches()
    factory = RequestFactory()

    def request(path: str):
        r = factory.get(path)
        r.user = admin
        r.session = SessionStore()
        r._messages = FallbackStorage(r)
        return r

    for label, call in (
        ("django-helpdesk report index", lambda: staff.report_index(request("/helpdesk/reports/"))),
        (
            "django-helpdesk queue × month report",
            lambda: staff.run_report(request("/helpdesk/reports/queuemonth/"), "queuemonth"),
        ),
    ):
        try:
            best, _ = timed(call)
            print(f"{label:52} {best:8.2f} s  (every queue, months in UTC)")
        except Exception as exc:  # noqa: BLE001 - a comparison, not a product path
            print(f"{label:52} not measured: {type(exc).__name__}: {exc}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--donations", type=int, default=2_000_000)
    parser.add_argument("--calls", type=int, default=600_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument(
        "--helpdesk", action="store_true", help="also time django-helpdesk's reports"
    )
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    call_command("migrate", verbosity=0)
    municipalities = ensure_municipalities()[:30]
    agents, admin = ensure_users(municipalities)
    donors = ensure_donors(municipalities)
    gifts = ensure_reference(municipalities)
    if not args.skip_load:
        load_mirror(args.donations, municipalities, donors, gifts)
        load_tickets(args.tickets, municipalities, donors, agents)
        load_calls(args.calls, municipalities)

    _, month = _year()
    city = max(
        municipalities,
        key=lambda m: Inquiry.objects.filter(
            municipality=m, created_at__gte=month.start, created_at__lt=month.end
        ).count(),
    )
    in_month = Inquiry.objects.filter(
        municipality=city, created_at__gte=month.start, created_at__lt=month.end
    ).count()
    print(
        f"\n{Inquiry.objects.count():,} tickets, {Call.objects.count():,} calls, "
        f"{Donation.objects.count():,} donations, {len(municipalities)} municipalities; "
        f"month {month.label()}, busiest city {city.name} with {in_month:,} tickets in it\n"
    )
    first_best, _ = timed(lambda: monthly_report_data(city, month))
    best, median = timed(lambda: monthly_report_data(city, month), runs=args.runs)
    print(f"{'one city-month report (first, loads the tokenizer)':52} {first_best:8.2f} s")
    print(
        f"{'one city-month report':52} {median:8.2f} s median, {best:.2f} s best  "
        f"(target ≤ 2 s: {'yes' if median <= 2 else 'NO'})"
    )
    MonthlyReport.objects.filter(month=month.first_day).delete()
    every, _ = timed(lambda: services.reports_generate_all(month=month))
    print(
        f"{'all municipalities generated (' + str(len(municipalities)) + ')':52} {every:8.2f} s  "
        f"(target ≤ 60 s: {'yes' if every <= 60 else 'NO'})"
    )
    from analysis.views import _report_context

    report = MonthlyReport.objects.get(municipality=city, month=month.first_day)
    context = {**_report_context(report.data, drill=""), "report": report, "pdf": True}
    exports.report_pdf(report, context)  # fonts and Pango warm
    best, median = timed(lambda: exports.report_pdf(report, context), runs=3)
    size = len(exports.report_pdf(report, context))
    print(
        f"{'PDF of one report':52} {median:8.2f} s median ({size // 1024} KiB)  "
        f"(target ≤ 5 s: {'yes' if median <= 5 else 'NO'})"
    )
    best, _ = timed(lambda: exports.report_xlsx(report), runs=3)
    print(f"{'XLSX of one report':52} {best:8.2f} s")
    if args.helpdesk:
        helpdesk_reports(admin, month)


if __name__ == "__main__":
    main()
