"""Ticket benchmark: 1M tickets with follow-ups on PostgreSQL; prints p95 latencies.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fz_tickets_bench \\
        .venv/bin/python benchmarks/tickets.py [--tickets 1000000] [--runs 30]

Uses the municipalities (and donors) already in the database, e.g. one built by
``manage.py seed_demo --scale``; with fewer than 30 it creates its own. Tickets are added with
COPY until the database holds ``--tickets`` of them (later runs reuse them), then measured:

- agent queue view: the console's queries for an agent serving 5 municipalities: the newest 50
  open tickets with what each row shows (+ the total), open/unassigned/severe counts per
  municipality, and "my open tickets";
- Japanese substring search (tickets.search) for 3+ and 2-character terms, newest activity first;
- the same list and keyword search as vanilla django-helpdesk runs them (helpdesk.query's
  datatables query behind ``ticket_list``, ``get_search_filter_args``' ``title__icontains | …``),
  on the same rows, with the ratio.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, Q  # noqa: E402
from django.utils import timezone  # noqa: E402

# Vanilla django-helpdesk is measured here for comparison.
from helpdesk.query import get_query_class  # noqa: E402
from helpdesk.user import HelpdeskUser  # noqa: E402

from crm.models import Donor, Municipality, User  # noqa: E402
from tickets.models import (  # noqa: E402
    OPEN_STATUSES,
    SEVERITY_PRIORITY,
    Category,
    Inquiry,
    InquiryEvent,
    MunicipalityQueue,
    Status,
)
from tickets.search import normalize_for_search, search_inquiries  # noqa: E402

AGENTS = 60
AGENT_MUNICIPALITIES = 5
CHUNK = 20_000

SEARCH_INDEX_SQL = [
    "CREATE INDEX IF NOT EXISTS inquiry_search_trgm ON tickets_inquiry "
    "USING gin (search_text gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS inquiry_search_internal_trgm ON tickets_inquiry "
    "USING gin (search_text_internal gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS inquiry_search_bigrams ON tickets_inquiry "
    "USING gin (fz_bigrams(search_text))",
    "CREATE INDEX IF NOT EXISTS inquiry_search_internal_bigrams ON tickets_inquiry "
    "USING gin (fz_bigrams(search_text_internal))",
]
SEARCH_INDEXES = [
    "inquiry_search_trgm",
    "inquiry_search_internal_trgm",
    "inquiry_search_bigrams",
    "inquiry_search_internal_bigrams",
]

# --- corpus: what call-center tickets say, with the spelling variety of real input -----------

GIFTS = [
    "いくら醤油漬け",
    "毛ガニ",
    "ホタテ貝柱",
    "夕張メロン",
    "黒毛和牛すき焼き用",
    "ゆめぴりか 10kg",
    "クラフトビール 12本",
    "アジの干物",
    "うなぎ蒲焼",
    "シャインマスカット",
    "ふじりんご",
    "豚しゃぶセット",
    "ハンバーグ",
    "ズワイガニ",
    "紅ズワイ",
    "明太子",
    "旬の野菜セット",
    "ラーメン詰め合わせ",
    "日本酒 飲み比べ",
    "牡蠣",
    "ﾒﾛﾝ",
    "トマトジュース",
    "チーズケーキ",
]
PORTALS = ["ふるさとチョイス", "楽天ふるさと納税", "さとふる", "ふるなび", "ANAのふるさと納税"]
CARRIERS = ["ヤマト運輸", "佐川急便", "日本郵便", "ゆうパック"]
TITLES = [
    "{gift}が届かない",
    "{gift}が破損していた",
    "{gift}の発送時期を知りたい",
    "{gift}が傷んでいた",
    "寄附金受領証明書が届かない",
    "寄附金受領証明書の再発行",
    "ワンストップ特例申請書の送付先",
    "ワンストップ特例申請書を紛失した",
    "配達日時を変更したい",
    "住所変更の手続きについて",
    "{portal}で申し込んだ寄附の確認",
    "寄附をキャンセルしたい",
    "支払い方法の確認",
    "確定申告に必要な書類",
    "カタログを送ってほしい",
    "事業者からの出荷依頼の確認",
    "{portal}の口コミへの対応",
    "定期便の配送スケジュール",
    "不在票が入っていた",
    "お礼状の宛名が違う",
]
SENTENCES = [
    "{month}月{day}日に{portal}で申し込みました。",
    "受付番号は{order}です。",
    "{gift}がまだ届いていません。",
    "箱が潰れていて中身が破損していました。",
    "冷凍便で届きましたが解凍されていました。",
    "賞味期限が過ぎていました。",
    "{carrier}の伝票番号は{tracking}です。",
    "年末は不在にするので配達日を変更したいです。",
    "寄附金受領証明書がまだ届きません。確定申告に使います。",
    "ワンストップ特例申請書を返送しましたが届いているか確認したいです。",
    "引っ越したので住所を変更したいです。",
    "電話がつながらなかったのでメールしました。",
    "のし紙をつけてほしいです。",
    "ｶﾀﾛｸﾞを送ってください。",
    "クレジットカードの決済ができませんでした。",
    "家族の名義で申し込んでしまいました。",
    "お礼の品の数が足りません。",
    "違う商品が届きました。",
    "再送をお願いします。",
    "担当の方から折り返しをお願いします。",
]
REPLIES = [
    "お問い合わせありがとうございます。{carrier}に配送状況を確認いたします。",
    "ご不便をおかけし申し訳ございません。事業者に確認のうえ再送を手配いたします。",
    "寄附金受領証明書は入金確認後2週間程度で発送しております。",
    "ワンストップ特例申請書は{month}月{day}日に受付済みです。",
    "配達日の変更を事業者へ依頼いたしました。",
    "写真をお送りいただけますでしょうか。",
]
NOTES = [
    "事業者に電話確認。{month}月{day}日に再発送予定。",
    "過去にも同様の問合せあり。要注意。",
    "市の担当者へ報告済み。",
    "伝票番号{tracking}で追跡、持戻り中。",
    "寄附者から再度入電、折り返し希望。",
]


def _text(rng: random.Random, template: str) -> str:
    return template.format(
        gift=rng.choice(GIFTS),
        portal=rng.choice(PORTALS),
        carrier=rng.choice(CARRIERS),
        month=rng.randint(1, 12),
        day=rng.randint(1, 28),
        order=f"{rng.randint(100000, 999999)}-2024{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}-{rng.randint(0, 99999999):08d}",
        tracking=f"{rng.randint(10**11, 10**12 - 1)}",
    )


# --- setup --------------------------------------------------------------------------------


def municipality_code(n: int) -> str:
    body = f"{90000 + n:05d}"
    total = sum(int(d) * w for d, w in zip(body, (6, 5, 4, 3, 2), strict=True))
    return body + str((11 - total % 11) % 10)


def ensure_municipalities() -> list[Municipality]:
    existing = list(Municipality.objects.order_by("id"))
    if len(existing) >= 30:
        return existing
    for n in range(len(existing), 30):
        Municipality.objects.get_or_create(
            code=municipality_code(n),
            defaults={
                "name": f"ベンチ{n}市",
                "name_kana": f"ベンチ{n}シ",
                "prefecture": "北海道",
                "answer_name": f"ベンチ{n}市ふるさと納税コールセンター",
            },
        )
    return list(Municipality.objects.order_by("id"))


def ensure_users(municipalities: list[Municipality]) -> tuple[list[User], User]:
    agents = []
    for k in range(AGENTS):
        user, created = User.objects.get_or_create(
            username=f"bench_agent_{k}", defaults={"role": User.Role.AGENT}
        )
        if created:
            user.municipalities.set(
                [municipalities[(k + i) % len(municipalities)] for i in range(AGENT_MUNICIPALITIES)]
            )
        agents.append(user)
    admin, _ = User.objects.get_or_create(
        username="bench_admin",
        defaults={"role": User.Role.OPERATOR_ADMIN, "is_superuser": True, "is_staff": True},
    )
    return agents, admin


def ensure_donors(municipalities: list[Municipality]) -> dict[int, list[int]]:
    by_muni: dict[int, list[int]] = {}
    for m in municipalities:
        ids = list(Donor.objects.filter(municipality=m).values_list("id", flat=True)[:2000])
        if not ids:
            Donor.objects.bulk_create(
                Donor(municipality=m, name=f"寄附者 {i}", name_kana="キフシャ") for i in range(500)
            )
            ids = list(Donor.objects.filter(municipality=m).values_list("id", flat=True))
        by_muni[m.pk] = ids
    return by_muni


def _max_id(table: str, column: str = "id") -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max({column}), 0) FROM {table}")  # noqa: S608
        return cursor.fetchone()[0]


def load_tickets(target: int, agents: list[User], donors: dict[int, list[int]]) -> None:
    have = Inquiry.objects.count()
    if have >= target:
        print(f"reusing {have:,} tickets")
        return
    todo = target - have
    print(f"adding {todo:,} tickets with COPY …", flush=True)
    started = time.perf_counter()
    rng = random.Random(have)
    queues = dict(MunicipalityQueue.objects.values_list("municipality_id", "queue_id"))
    categories = list(Category.objects.values_list("id", flat=True))
    servers: dict[int, list[int]] = {}
    for agent in agents:
        for mid in agent.municipalities.values_list("id", flat=True):
            servers.setdefault(mid, []).append(agent.pk)
    munis = list(queues)
    now = timezone.now()
    ticket_id = _max_id("helpdesk_ticket") + 1
    followup_id = _max_id("helpdesk_followup") + 1
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # generated rows are consistent
        cursor.execute("SET synchronous_commit = off")  # benchmark data; a crash just reloads
        for name in SEARCH_INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
    done = 0
    while done < todo:
        n = min(CHUNK, todo - done)
        tickets, inquiries, followups, events, changes = [], [], [], [], []
        for _ in range(n):
            mid = rng.choice(munis)
            # Tickets arrive in time order (ids follow creation), over two years.
            position = (have + done + len(tickets)) / target
            age = timedelta(days=730 * (1 - position), seconds=rng.randint(0, 3600))
            created = now - age
            recent = age < timedelta(days=30)
            status = (
                rng.choice(OPEN_STATUSES)
                if rng.random() < (0.6 if recent else 0.01)
                else rng.choice([Status.CLOSED] * 8 + [Status.RESOLVED] * 3 + [Status.DUPLICATE])
            )
            severity = rng.choices(["low", "normal", "high", "urgent"], [10, 75, 12, 3])[0]
            assignee = rng.choice(servers.get(mid, [None])) if rng.random() < 0.8 else None
            channel = rng.choices(["phone", "email", "fax", "web_form"], [60, 30, 3, 7])[0]
            title = _text(rng, rng.choice(TITLES))
            description = "".join(
                _text(rng, rng.choice(SENTENCES)) for _ in range(rng.randint(1, 4))
            )
            public_text = [title, description]
            internal_text = []
            tickets.append(
                (
                    ticket_id, title, queues[mid], created, created,
                    None, assignee, int(status), False, description,
                    SEVERITY_PRIORITY[severity], str(uuid.UUID(int=rng.getrandbits(128))),
                )
            )  # fmt: skip
            at = created
            rows = [("opened", "受付", "", False, False, None)]
            for _ in range(rng.randint(0, 3)):
                kind = rng.choices(["reply", "note", "customer_message"], [5, 3, 2])[0]
                if kind == "reply":
                    rows.append((kind, "返信", _text(rng, rng.choice(REPLIES)), True, False, None))
                elif kind == "note":
                    operator_only = rng.random() < 0.7
                    body = _text(rng, rng.choice(NOTES))
                    rows.append((kind, "内部メモ", body, False, operator_only, None))
                else:
                    body = _text(rng, rng.choice(SENTENCES))
                    rows.append((kind, "問合せ者からの連絡", body, True, False, None))
            if status not in OPEN_STATUSES:
                rows.append(("status", "状態変更", "", False, False, int(status)))
            first_response = None
            for kind, ftitle, comment, public, operator_only, new_status in rows:
                at = at + timedelta(minutes=rng.randint(1, 600))
                user = None if kind in ("opened", "customer_message") else assignee
                followups.append(
                    (followup_id, ticket_id, at, ftitle, comment, public, user, new_status)
                )
                events.append((followup_id, ticket_id, mid, kind, operator_only, "", "", user, at))
                if new_status is not None:
                    changes.append((followup_id, "status", "未解決", Status(new_status).label))
                if kind == "reply" and first_response is None:
                    first_response = at
                if comment:
                    (internal_text if operator_only else public_text).append(comment)
                followup_id += 1
            inquiries.append(
                (
                    ticket_id, mid, channel, "donor", assignee,
                    rng.choice(categories) if rng.random() < 0.9 else None,
                    severity, int(status), created, at, first_response,
                    at if status not in OPEN_STATUSES else None,
                    rng.choice(donors[mid]) if donors.get(mid) and rng.random() < 0.7 else None,
                    normalize_for_search("\n".join(public_text)),
                    normalize_for_search("\n".join(internal_text)),
                    "",
                )
            )  # fmt: skip
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
            "severity, status, "
            "created_at, last_activity_at, first_response_at, resolved_at, donor_id, "
            "search_text, search_text_internal, requester_name",
            inquiries,
        )
        _copy(
            "helpdesk_followup",
            "id, ticket_id, date, title, comment, public, user_id, new_status",
            followups,
        )
        _copy(
            "tickets_inquiryevent",
            "followup_id, inquiry_id, municipality_id, kind, operator_only, channel, sender, "
            "actor_id, at",
            events,
        )
        _copy("helpdesk_ticketchange", "followup_id, field, old_value, new_value", changes)
        done += n
        rate = done / (time.perf_counter() - started)
        print(f"  {have + done:,} tickets ({rate:,.0f}/s)", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = DEFAULT")
        for table, column in (
            ("helpdesk_ticket", "id"),
            ("helpdesk_followup", "id"),
            ("helpdesk_ticketchange", "id"),
        ):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "  # noqa: S608
                f"(SELECT max({column}) FROM {table}))"
            )
    build_search_indexes()
    print(f"loaded in {time.perf_counter() - started:,.0f} s", flush=True)


def build_search_indexes() -> None:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for sql in SEARCH_INDEX_SQL:
            cursor.execute(sql)
        # As autovacuum would have by now: statistics, and the visibility map for index-only scans.
        for table in (
            "tickets_inquiry",
            "helpdesk_ticket",
            "helpdesk_followup",
            "tickets_inquiryevent",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute("ANALYZE")
    print(f"search indexes + VACUUM ANALYZE in {time.perf_counter() - started:,.0f} s", flush=True)


def _copy(table: str, columns: str, rows: list[tuple]) -> None:
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


# --- measured queries -------------------------------------------------------------------------


def agent_queue_rows(user: User) -> list:
    """The newest 50 open tickets in the agent's municipalities, with what each row shows."""
    qs = (
        Inquiry.objects.visible_to(user)
        .filter(status__in=OPEN_STATUSES)
        .select_related("ticket", "assigned_to", "municipality", "donor", "category")
        .defer("search_text", "search_text_internal")
        .order_by("-created_at")
    )
    rows = [
        (i.pk, i.ticket.title, i.municipality.name, i.category and i.category.name, i.severity,
         i.donor and i.donor.name, i.assigned_to and str(i.assigned_to), i.last_activity_at)
        for i in qs[:50]
    ]  # fmt: skip
    return [qs.count(), rows]


def agent_queue_counts(user: User) -> list:
    return list(
        Inquiry.objects.visible_to(user)
        .filter(status__in=OPEN_STATUSES)
        .values("municipality_id")
        .annotate(
            open=Count("pk"),
            unassigned=Count("pk", filter=Q(assigned_to__isnull=True)),
            severe=Count("pk", filter=Q(severity__in=["high", "urgent"])),
        )
    )


def my_open_tickets(user: User) -> list:
    return list(
        Inquiry.objects.visible_to(user)
        .filter(status__in=OPEN_STATUSES, assigned_to=user)
        .select_related("ticket", "municipality", "donor", "category")
        .defer("search_text", "search_text_internal")
        .order_by("-last_activity_at")[:20]
    )


def agent_queue_page(user: User) -> list:
    return [agent_queue_rows(user), agent_queue_counts(user), my_open_tickets(user)]


def our_search(user: User, query: str) -> list:
    qs = search_inquiries(Inquiry.objects.all(), user, query)
    return [
        (i.pk, i.ticket.title, i.municipality.name)
        for i in qs.select_related("ticket", "municipality", "category").order_by(
            "-last_activity_at"
        )[:20]
    ]


def _helpdesk_query(admin: User, queue_ids: list[int], search: str, statuses: list[int] | None):
    filtering: dict = {"queue__id__in": queue_ids}
    if statuses:
        filtering["status__in"] = statuses
    params = {
        "filtering": filtering,
        "filtering_null": {},
        "sorting": "created",
        "sortreverse": True,
        "search_string": search,
    }
    query = get_query_class()(HelpdeskUser(admin), query_params=params)
    return query.get_datatables_context(draw=["1"], length=["50"], start=["0"])


def p95(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm the cache, as a busy server would be
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return timings[max(0, int(round(0.95 * len(timings))) - 1)], statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--vanilla-runs", type=int, default=5)
    parser.add_argument("--skip-load", action="store_true")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    call_command("migrate", verbosity=0)
    municipalities = ensure_municipalities()
    agents, admin = ensure_users(municipalities)
    donors = ensure_donors(municipalities)
    if not args.skip_load:
        load_tickets(args.tickets, agents, donors)

    agent = agents[0]
    agent_munis = list(agent.municipalities.values_list("id", flat=True))
    queue_ids = list(
        MunicipalityQueue.objects.filter(municipality_id__in=agent_munis).values_list(
            "queue_id", flat=True
        )
    )
    total = Inquiry.objects.count()
    open_in_scope = Inquiry.objects.visible_to(agent).filter(status__in=OPEN_STATUSES).count()
    print(
        f"\n{total:,} tickets, {InquiryEvent.objects.count():,} follow-ups, "
        f"{len(municipalities)} municipalities; agent serves {len(agent_munis)} "
        f"({open_in_scope:,} open tickets there)\n"
    )
    print(f"{'measure':58} {'p95 ms':>9} {'median':>9}")

    def show(label: str, fn: Callable[[], object], runs: int = args.runs) -> float:
        high, mid = p95(fn, runs)
        print(f"{label:58} {high:9.1f} {mid:9.1f}", flush=True)
        return high

    queue_p95 = show("agent queue view (rows+total, counts, mine)", lambda: agent_queue_page(agent))
    show("  newest 50 open tickets + total", lambda: agent_queue_rows(agent))
    show("  open/unassigned/severe per municipality", lambda: agent_queue_counts(agent))
    show("  my open tickets", lambda: my_open_tickets(agent))

    searches = {
        "3+ chars": [
            "受領証明",
            "毛ガニ",
            "ヤマト運輸",
            "賞味期限",
            "かたろぐ",
            "シャインマスカット",
        ],
        "2 chars": ["破損", "不在", "冷凍", "再送", "のし", "メロ"],
    }
    search_p95: dict[str, float] = {}
    for group, terms in searches.items():
        worst = 0.0
        for term in terms:
            for who, user in (("agent", agent), ("admin", admin)):
                hits = len(our_search(user, term))
                worst = max(worst, show(f"search {group} {who:5} 「{term}」 ({hits} shown)",
                                        lambda u=user, t=term: our_search(u, t)))  # fmt: skip
        search_p95[group] = worst

    print("\nvanilla django-helpdesk on the same rows (agent's 5 queues):")
    vanilla_list = show(
        "helpdesk ticket_list datatables query (open, newest)",
        lambda: _helpdesk_query(admin, queue_ids, "", list(OPEN_STATUSES)),
        args.vanilla_runs,
    )
    ours_list = show("ours: newest 50 open tickets + total", lambda: agent_queue_rows(agent))
    vanilla_search = show(
        "helpdesk keyword search 「受領証明」",
        lambda: _helpdesk_query(admin, queue_ids, "受領証明", None),
        args.vanilla_runs,
    )
    ours_search = show("ours: search 「受領証明」", lambda: our_search(agent, "受領証明"))
    print(
        f"\nsummary: agent queue view p95 {queue_p95:.1f} ms (target ≤ 150); "
        f"search p95 3+ chars {search_p95['3+ chars']:.1f} ms, 2 chars "
        f"{search_p95['2 chars']:.1f} ms (target ≤ 300); helpdesk/ours: list "
        f"{vanilla_list / ours_list:.1f}×, search {vanilla_search / ours_search:.1f}×"
    )


if __name__ == "__main__":
    main()
