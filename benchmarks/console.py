"""Console search and donor page at operator scale: p50/p95 of what an agent does per call.

Runs ``tickets.selectors.universal_search`` (the console's one search box) with the inputs as a
caller gives them — a phone number in full-width digits, an order number, a hyphenated tracking
number, a reading in hiragana, a kanji name with or without the space, a postal code, an e-mail —
scoped the way an agent is: the five municipalities they serve. Then ``donor_page`` (donations,
shipments and tickets of one donor). Read-only; the database must be loaded with
``manage.py seed_demo --scale``.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fz_scale \\
        .venv/bin/python -m benchmarks.console [--samples 300] [--seed 1]

Target: p95 ≤ 50 ms for a search (what the agent waits for between keystrokes) and for the
donor page's reads.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

import jaconv  # noqa: E402
from django.db import connection  # noqa: E402

from crm import normalize  # noqa: E402
from crm.models import Donor, User  # noqa: E402
from tickets import selectors  # noqa: E402

TARGET_P95_MS = 50.0
SERVED = 5  # municipalities one agent answers for


def _rows(sql: str, n: int, rng: random.Random) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    rng.shuffle(rows)
    return rows[:n]


def _pct(table: str, wanted: int) -> float:
    with connection.cursor() as cur:
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        total = max(cur.fetchone()[0], 1)
    return min(100.0, 300.0 * wanted / total)


def _full_width(text: str) -> str:
    return jaconv.h2z(text, kana=False, ascii=True, digit=True).replace("-", "−")


def build_cases(n: int, rng: random.Random) -> dict[str, list[tuple[int, str]]]:
    cases: dict[str, list[tuple[int, str]]] = {}
    p = _pct("crm_donorphone", n)
    cases["電話番号（全角）"] = [
        (m, _full_width(normalize.format_phone_national(e)))
        for m, e in _rows(
            f"SELECT municipality_id, e164 FROM crm_donorphone TABLESAMPLE BERNOULLI ({p})", n, rng
        )
    ]
    p = _pct("donations_sync_donation", n)
    rows = _rows(
        "SELECT municipality_id, portal_order_number, external_id FROM donations_sync_donation "
        f"TABLESAMPLE BERNOULLI ({p})",
        n,
        rng,
    )
    cases["受付番号"] = [(m, o) for m, o, _ in rows if o]
    cases["外部管理番号"] = [(m, e) for m, _, e in rows if e]
    p = _pct("donations_sync_shipment", n)
    cases["伝票番号（ハイフン付き）"] = [
        (m, normalize.format_tracking_number(t))
        for m, t in _rows(
            f"SELECT municipality_id, tracking_number FROM donations_sync_shipment TABLESAMPLE BERNOULLI ({p}) "
            "WHERE tracking_number <> ''",
            n,
            rng,
        )
    ]
    p = _pct("crm_donor", n)
    donors = _rows(
        f"SELECT municipality_id, name, name_kana, postal_code FROM crm_donor TABLESAMPLE BERNOULLI ({p})",
        n,
        rng,
    )
    cases["フリガナ（ひらがな前方一致）"] = [
        (m, jaconv.kata2hira(k[: rng.randint(2, 4)])) for m, _, k, _ in donors if k
    ]
    cases["氏名（漢字）"] = [(m, name) for m, name, _, _ in donors]
    cases["氏名（空白なし）"] = [
        (m, name.replace(" ", "").replace("　", "")) for m, name, _, _ in donors
    ]
    cases["郵便番号"] = [
        (m, f"〒{normalize.format_postal_code(pc)}") for m, _, _, pc in donors if pc
    ]
    p = _pct("crm_donoremail", n)
    cases["メールアドレス"] = [
        (m, a.upper())
        for m, a in _rows(
            f"SELECT municipality_id, address FROM crm_donoremail TABLESAMPLE BERNOULLI ({p})",
            n,
            rng,
        )
    ]
    return cases


def agent_serving(municipality_id: int, all_ids: list[int], rng: random.Random) -> User:
    """An agent assigned to this municipality and four others (not saved: the run is read-only).

    The access policy caches a user's municipalities on the instance; setting that cache is how
    an unsaved user gets an assignment without writing to the database.
    """
    others = rng.sample(
        [i for i in all_ids if i != municipality_id], min(SERVED - 1, len(all_ids) - 1)
    )
    user = User(username="bench", role=User.Role.AGENT, is_active=True)
    user._visible_municipality_ids = frozenset([municipality_id, *others])
    return user


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(label: str, timings: list[float], hits: int) -> bool:
    p50, p95 = pct(timings, 50), pct(timings, 95)
    passed = p95 <= TARGET_P95_MS
    print(
        f"{label:<26}{len(timings):>6}{p50:>9.2f}{p95:>9.2f}{max(timings):>9.2f}  "
        f"{'OK' if passed else 'NG'}（該当あり {hits}/{len(timings)}）"
    )
    return passed


def run(samples: int, seed: int) -> bool:
    rng = random.Random(seed)
    with connection.cursor() as cur:
        cur.execute("SELECT id FROM crm_municipality")
        all_ids = [r[0] for r in cur.fetchall()]
    print(f"自治体 {len(all_ids)}・担当 {SERVED} 自治体の範囲で検索")
    print(
        f"{'検索':<26}{'件数':>6}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  判定(p95≤{TARGET_P95_MS:g}ms)"
    )
    ok = True
    for label, inputs in build_cases(samples, rng).items():
        if len(inputs) < 20:
            print(f"{label:<26} データ不足")
            continue
        users = [agent_serving(m, all_ids, rng) for m, _ in inputs]
        for user, (_, q) in list(zip(users, inputs, strict=True))[:10]:
            selectors.universal_search(user, q)
        timings, hits = [], 0
        for user, (_, q) in zip(users, inputs, strict=True):
            started = time.perf_counter()
            results = selectors.universal_search(user, q)
            timings.append((time.perf_counter() - started) * 1000)
            hits += bool(results.hits)
        ok &= report(label, timings, hits)

    donor_rows = _rows(
        f"SELECT id, municipality_id FROM crm_donor TABLESAMPLE BERNOULLI ({_pct('crm_donor', samples)})",
        samples,
        rng,
    )
    timings, with_donations = [], 0
    for donor_id, municipality_id in donor_rows:
        user = agent_serving(municipality_id, all_ids, rng)
        started = time.perf_counter()
        donor = (
            Donor.objects.select_related("municipality")
            .prefetch_related("phones", "emails")
            .get(id=donor_id)
        )
        page = selectors.donor_page(user, donor)
        timings.append((time.perf_counter() - started) * 1000)
        with_donations += bool(page["donations"])
    ok &= report("寄附者ページの読み出し", timings, with_donations)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=300, help="searches per kind")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("DATABASE_URL must point at a PostgreSQL database loaded with --scale")
    raise SystemExit(0 if run(args.samples, args.seed) else 1)


if __name__ == "__main__":
    main()
