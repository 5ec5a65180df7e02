"""Hand-over benchmark: export and verified deletion of a municipality with 100,000 donors and
50,000 inquiries, while another municipality's agents keep working.

    export DEBUG=false SECRET_KEY=benchmark-only-secret TWILIO_AUTH_TOKEN=benchmark-only-token
    DATABASE_URL=postgres://furusato:furusato@127.0.0.1:5432/fz_handover_bench \\
        .venv/bin/python -m benchmarks.handover [--donors 100000] [--inquiries 50000]

The database is migrated if needed. Both cities are generated with set-based SQL
(INSERT … SELECT generate_series), not factories: city A (the one handed over) with
``--donors`` donors (each with a phone, every second with an e-mail, a donation and its
shipment) and ``--inquiries`` helpdesk tickets with their inquiry, two follow-ups each with
their timeline rows and a linked donation, plus calls; city B, a fifth of that, stays.

Measured:
- the export (``administration.handover.services.handover_export_run``, as the job runs it):
  seconds, rows, zip size; target ≤ 120 s;
- the deletion (``handover_deletion_run``: batches, verification, certificate): seconds;
  target ≤ 120 s;
- meanwhile a loop in its own database connection runs city B's typical queries (caller-ID
  donor lookup with the donors' presented rows, the ticket list's first page); their latencies
  p50/p95/max are printed before (baseline) and during the deletion.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from administration.handover import services  # noqa: E402
from crm.models import Municipality  # noqa: E402
from crm.selectors import donor_views  # noqa: E402
from donations_sync.selectors import donor_ids_by_phone  # noqa: E402
from tickets.selectors import inquiry_rows  # noqa: E402
from tickets.services import municipality_queue_ensure  # noqa: E402

CITY_A = ("012033", "小樽市", "オタルシ", "北海道")
CITY_B = ("342076", "福山市", "フクヤマシ", "広島県")
TARGET_SECONDS = 120.0


def _sql(statement: str, params: dict) -> None:
    with connection.cursor() as cur:
        cur.execute(statement, params)


def generate(city: Municipality, donors: int, inquiries: int) -> None:
    queue = municipality_queue_ensure(municipality=city)
    p = {"m": city.pk, "q": queue.pk, "n": donors, "t": inquiries, "c": city.code}
    start = time.perf_counter()
    _sql(
        """INSERT INTO crm_donor (municipality_id, donor_number, name, name_kana, postal_code,
        prefecture, address, building, is_resident, returned_mail, do_not_contact, note,
        created_at, updated_at)
        SELECT %(m)s, 'D' || g, '寄附 太郎' || g, 'キフタロウ', lpad((g %% 9999999)::text, 7, '0'),
        '東京都', '千代田区千代田1-' || g, '', false, false, false, '', now(), now()
        FROM generate_series(1, %(n)s) g""",
        p,
    )
    _sql(
        """INSERT INTO crm_donorphone (donor_id, municipality_id, e164, raw)
        SELECT id, municipality_id, '+8190' || lpad((id %% 100000000)::text, 8, '0'), ''
        FROM crm_donor WHERE municipality_id = %(m)s""",
        p,
    )
    _sql(
        """INSERT INTO crm_donoremail (donor_id, municipality_id, address)
        SELECT id, municipality_id, 'donor' || id || '@example.jp'
        FROM crm_donor WHERE municipality_id = %(m)s AND id %% 2 = 0""",
        p,
    )
    _sql(
        """INSERT INTO crm_provider (municipality_id, code, name, name_kana, phone, email,
        contact_person) VALUES (%(m)s, 'P1', '事業者', 'ジギョウシャ', '', '', '')""",
        p,
    )
    _sql(
        """INSERT INTO donations_sync_giftitem (municipality_id, provider_id, code, name,
        deliveries, perishable)
        SELECT %(m)s, id, 'G1', '返礼品', 1, false FROM crm_provider WHERE municipality_id = %(m)s""",
        p,
    )
    _sql(
        """INSERT INTO donations_sync_donation (municipality_id, donor_id, portal,
        portal_order_number, external_id, donated_at, amount, payment_method,
        one_stop_requested, gift_declined, status, note, updated_at)
        SELECT municipality_id, id, 'choice', 'O' || id, 'E' || id, now(), 10000,
        'credit_card', false, false, 'paid', '', now()
        FROM crm_donor WHERE municipality_id = %(m)s""",
        p,
    )
    _sql(
        """INSERT INTO donations_sync_shipment (municipality_id, donation_id, gift_item_id,
        delivery_number, ship_to_name, ship_to_kana, ship_to_postal_code, ship_to_address,
        ship_to_phone, desired_time_slot, tracking_number, status, updated_at)
        SELECT d.municipality_id, d.id, g.id, 1, '寄附 太郎', 'キフタロウ', '1000001',
        '千代田区', '', '', '', 'pending', now()
        FROM donations_sync_donation d
        JOIN donations_sync_giftitem g ON g.municipality_id = d.municipality_id
        WHERE d.municipality_id = %(m)s""",
        p,
    )
    _sql(
        """INSERT INTO helpdesk_ticket (title, created, modified, status, on_hold, priority,
        queue_id, secret_key, submitter_email, description)
        SELECT '返礼品が届かない ' || g, now() - (g || ' minutes')::interval, now(), 1 + g %% 4,
        false, 3, %(q)s, md5(%(c)s || g::text), 'donor' || g || '@example.jp', '問合せ本文 ' || g
        FROM generate_series(1, %(t)s) g""",
        p,
    )
    _sql(
        """INSERT INTO tickets_inquiry (ticket_id, municipality_id, channel, requester_type,
        requester_name, severity, status, created_at, last_activity_at, search_text,
        search_text_internal, donor_id)
        SELECT t.id, %(m)s, 'phone', 'donor', '寄附 太郎', 'normal', t.status, t.created,
        t.modified, '', '', (SELECT min(id) FROM crm_donor WHERE municipality_id = %(m)s)
        + (t.id %% %(n)s)
        FROM helpdesk_ticket t WHERE t.queue_id = %(q)s""",
        p,
    )
    _sql(
        """INSERT INTO tickets_inquiry_donations (inquiry_id, donation_id)
        SELECT i.ticket_id, d.id FROM tickets_inquiry i
        JOIN donations_sync_donation d ON d.donor_id = i.donor_id
        WHERE i.municipality_id = %(m)s""",
        p,
    )
    _sql(
        """INSERT INTO helpdesk_followup (ticket_id, date, public, title, comment)
        SELECT t.id, t.created + (k || ' minutes')::interval, true, '対応', '対応記録 ' || k
        FROM helpdesk_ticket t CROSS JOIN generate_series(1, 2) k WHERE t.queue_id = %(q)s""",
        p,
    )
    _sql(
        """INSERT INTO tickets_inquiryevent (followup_id, inquiry_id, municipality_id, kind,
        operator_only, channel, sender, at)
        SELECT f.id, f.ticket_id, %(m)s, 'note', false, 'phone', '', f.date
        FROM helpdesk_followup f JOIN helpdesk_ticket t ON t.id = f.ticket_id
        WHERE t.queue_id = %(q)s""",
        p,
    )
    _sql(
        """INSERT INTO telephony_call (municipality_id, call_sid, direction, status, from_raw,
        from_e164, to_e164, after_hours, ivr_digit, requester_type, offered_at, recording_sid,
        recording_url, recording_seconds, voicemail, matched_donor_ids, disposition_note,
        last_sequence)
        SELECT %(m)s, 'CA' || %(c)s || g, 'inbound', 'completed', '', '+819000000000',
        '+815000000000', false, '', '', now() - (g || ' minutes')::interval, 'RE' || g,
        'https://api.twilio.com/recordings/RE' || g, 60, false, '[]', '', 0
        FROM generate_series(1, %(t)s / 2) g""",
        p,
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(
        f"  {city.name}: 寄附者 {donors:,}・問合せ {inquiries:,} を生成（{time.perf_counter() - start:.1f} 秒）"
    )


def city(code: str, name: str, kana: str, prefecture: str) -> tuple[Municipality, bool]:
    m, created = Municipality.objects.get_or_create(
        code=code,
        defaults={"name": name, "name_kana": kana, "prefecture": prefecture, "answer_name": name},
    )
    return m, created


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return f"n={len(values)}"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"n={len(values)} p50={q[49]:.1f}ms p95={q[94]:.1f}ms max={max(values):.1f}ms"


class AgentLoop(threading.Thread):
    """City B's agent: caller-ID lookups and the ticket list, one after the other."""

    def __init__(self, municipality: Municipality, phones: list[str]) -> None:
        super().__init__(daemon=True)
        self.municipality = municipality
        self.phones = phones
        self.stop = threading.Event()
        self.lookup: list[float] = []
        self.ticket_list: list[float] = []

    def run(self) -> None:
        rng = random.Random(7)
        try:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                ids = donor_ids_by_phone([self.municipality.pk], rng.choice(self.phones))
                donor_views(self.municipality, ids)
                t1 = time.perf_counter()
                list(
                    inquiry_rows()
                    .filter(municipality=self.municipality)
                    .order_by("-created_at", "-pk")[:50]
                )
                t2 = time.perf_counter()
                self.lookup.append((t1 - t0) * 1000)
                self.ticket_list.append((t2 - t1) * 1000)
                time.sleep(0.05)
        finally:
            connection.close()


def agent_loop(b: Municipality, phones: list[str], seconds: float | None = None) -> AgentLoop:
    loop = AgentLoop(b, phones)
    loop.start()
    if seconds is not None:
        time.sleep(seconds)
        loop.stop.set()
        loop.join()
    return loop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--donors", type=int, default=100_000)
    parser.add_argument("--inquiries", type=int, default=50_000)
    args = parser.parse_args()
    settings.HANDOVER_ROOT = Path(tempfile.mkdtemp(prefix="handover-bench-"))
    settings.MEDIA_ROOT = settings.HANDOVER_ROOT / "media"
    call_command("migrate", verbosity=0)
    print("データ生成")
    a, created = city(*CITY_A)
    if not created:
        raise SystemExit(
            f"{a.name} がすでにあります（前回の実行が途中で止まった？）。DB を作り直してください。"
        )
    generate(a, args.donors, args.inquiries)
    b, created = city(*CITY_B)
    if created:
        generate(b, args.donors // 5, args.inquiries // 5)
    phones = [
        f"090{str(pk % 100000000).zfill(8)}"
        for pk in b.donors.order_by("?").values_list("pk", flat=True)[:500]
    ]

    print("出力")
    export = services.handover_export_request(actor=None, municipality=a)
    t0 = time.perf_counter()
    export = services.handover_export_run(export_id=export.pk)
    export_s = time.perf_counter() - t0
    size = (settings.HANDOVER_ROOT / export.file_name).stat().st_size
    print(
        f"  {export_s:.1f} 秒（目標 ≤ {TARGET_SECONDS:.0f} 秒）: {export.rows_written:,} 行、"
        f"{len(export.row_counts)} 表、zip {size / 1e6:.1f} MB"
    )

    print(f"{b.name}の業務（基準、10 秒）")
    base = agent_loop(b, phones, seconds=10)
    print(f"  電話番号で寄附者検索: {percentiles(base.lookup)}")
    print(f"  問合せ一覧（先頭50件）: {percentiles(base.ticket_list)}")

    print("削除（並行して福山市の業務）")
    run = services.handover_deletion_request(
        actor=None, municipality=a, confirm_code=a.code, actor_name="benchmark"
    )
    loop = agent_loop(b, phones)
    t0 = time.perf_counter()
    run = services.handover_deletion_run(deletion_id=run.pk)
    delete_s = time.perf_counter() - t0
    loop.stop.set()
    loop.join()
    print(
        f"  {delete_s:.1f} 秒（目標 ≤ {TARGET_SECONDS:.0f} 秒）: {run.rows_deleted:,} 行、"
        f"状態 {run.status}、残存確認 {'0件' if run.verification.get('clean') else run.verification}"
    )
    print(f"  最長のバッチ（1トランザクション）: {run.longest_batch_ms} ms")
    print(f"  電話番号で寄附者検索（削除中）: {percentiles(loop.lookup)}")
    print(f"  問合せ一覧（削除中）: {percentiles(loop.ticket_list)}")
    print(f"  （{', '.join(f'{v:.2f}' for v in os.getloadavg())} load average）")
    ok = export_s <= TARGET_SECONDS and delete_s <= TARGET_SECONDS and run.status == "done"
    print("結果:", "目標内" if ok else "目標超過")


if __name__ == "__main__":
    main()
