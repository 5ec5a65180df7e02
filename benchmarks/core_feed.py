"""The core's change feed: how many changes a pull applies per second, against a local fake core.

Loads one municipality with ``--donations`` donations (one shipment each) into a scratch
database, then serves ``--changes`` changes from the tests' fake core (tests/donations_sync/
fake_core.py) in pages of ``--page`` — paid dates and statuses, shipped with a tracking number,
delivered, with 5 % repeated on a later page and 5 % arriving older than what was applied — and
pulls them all with ``donations_sync.feed.feed_pull``. Then pulls the same changes again from an
empty cursor (all duplicates). Prints changes/s for both and checks nothing was applied twice
and no older change overwrote a newer one.

    createdb -h 127.0.0.1 -U furusato fz_feed_bench
    DATABASE_URL=postgres://furusato:furusato@127.0.0.1:5432/fz_feed_bench \\
        .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://furusato:furusato@127.0.0.1:5432/fz_feed_bench \\
        .venv/bin/python -m benchmarks.core_feed [--donations 20000] [--changes 50000]

Target: ≥ 100 changes/s applied by one worker: a large operator's busiest day (~100,000 changes
in December) in under 20 minutes of one worker, with beat pulling every minute.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402

from benchmarks._mirror import CODE, mirror_load, mirror_reset  # noqa: E402
from crm import normalize  # noqa: E402
from donations_sync import feed  # noqa: E402
from donations_sync.models import CoreChange, CoreFeedCursor, Shipment  # noqa: E402
from tests.donations_sync.fake_core import FakeCore, change  # noqa: E402

TARGET = 100.0
JST = datetime.timezone(datetime.timedelta(hours=9))


def _reset() -> None:
    CoreChange.objects.all().delete()
    CoreFeedCursor.objects.all().delete()
    mirror_reset()


def _changes(donations: int, count: int, rng: random.Random) -> list[dict]:
    """Per record, changes in time order; 5 % repeated later, 5 % swapped with the one before."""
    base = datetime.datetime(2026, 11, 1, 9, tzinfo=JST)
    out: list[dict] = []
    step = 0
    while len(out) < count:
        i = step % donations
        round_ = step // donations
        at = (base + datetime.timedelta(minutes=step)).isoformat()
        external_id = f"B{i:09d}"
        if round_ == 0:
            data = {"external_id": external_id, "status": "paid", "paid_on": "2026-11-01"}
            out.append(change(f"c{step}", "donation", at, data, municipality_code=CODE))
        else:
            body = f"{(40000000000 + step) % 10**11:011d}"
            number = body + str(normalize.mod7_check_digit(body))
            data = {
                "shipment_id": f"S-{i}",
                "donation": {"external_id": external_id},
                "gift_code": "G-1",
                "status": "shipped" if round_ % 2 else "delivered",
                "shipped_on": "2026-11-10",
                "carrier": "yamato",
                "tracking_number": number,
            }
            out.append(change(f"c{step}", "shipment", at, data, municipality_code=CODE))
        step += 1
    # An older change of a shipment arriving after its newer one (the next round's).
    for _ in range(len(out) // 20):
        j = rng.randrange(2 * donations, len(out)) if len(out) > 2 * donations else 0
        if j:
            out[j - donations], out[j] = out[j], out[j - donations]
    for _ in range(len(out) // 20):  # repeats, anywhere later
        out.insert(rng.randrange(len(out)), dict(out[rng.randrange(len(out))]))
    return out


def _pull(core: FakeCore) -> tuple[int, float, dict[str, int]]:
    CoreFeedCursor.objects.all().delete()
    started = time.perf_counter()
    total = 0
    outcomes: dict[str, int] = {}
    while True:
        result = feed.feed_pull()
        total += result.received
        for key, value in result.outcomes.items():
            outcomes[key] = outcomes.get(key, 0) + value
        if result.error:
            raise SystemExit(result.error)
        if result.received == 0:
            break
    return total, time.perf_counter() - started, outcomes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--donations", type=int, default=20000)
    parser.add_argument("--changes", type=int, default=50000)
    parser.add_argument("--page", type=int, default=500)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("needs PostgreSQL (DATABASE_URL)")
    rng = random.Random(1)
    _reset()
    t = time.perf_counter()
    mirror_load(args.donations)
    print(f"loaded {args.donations} donations and shipments in {time.perf_counter() - t:.1f} s")
    core = FakeCore().start()
    core.changes = _changes(args.donations, args.changes, rng)
    settings.CORE_API_URL = core.url
    settings.CORE_API_TOKEN = core.token
    settings.CORE_FEED_PAGE_SIZE = args.page
    settings.CORE_FEED_MAX_PAGES_PER_RUN = 1000
    try:
        received, seconds, outcomes = _pull(core)
        rate = received / seconds
        print(
            f"first pull: {received} changes in {seconds:.1f} s = {rate:,.0f} changes/s "
            f"{outcomes}  (target ≥ {TARGET:.0f}: {'met' if rate >= TARGET else 'MISSED'})"
        )
        again, seconds2, outcomes2 = _pull(core)
        print(
            f"same changes again: {again} in {seconds2:.1f} s = {again / seconds2:,.0f} "
            f"changes/s {outcomes2}"
        )
    finally:
        core.stop()
    unique = len({c["id"] for c in core.changes})
    applied_twice = (
        CoreChange.objects.values("change_id").annotate(n=Count("id")).filter(n__gt=1).count()
    )
    print(
        f"unique change ids {unique}, receipt rows {CoreChange.objects.count()}, "
        f"applied twice {applied_twice}, applied again on the second pull "
        f"{outcomes2.get('applied', 0)}"
    )
    # Newest wins: each shipment's stored time is the newest time among its changes.
    newest: dict[str, str] = {}
    for c in core.changes:
        if c["type"] == "shipment":
            key = c["data"]["shipment_id"]
            newest[key] = max(newest.get(key, ""), c["changed_at"])
    stored = dict(
        Shipment.objects.filter(municipality__code=CODE, core_ref__isnull=False).values_list(
            "core_ref__core_id", "core_updated_at"
        )
    )
    wrong = sum(
        1 for key, at in newest.items() if stored.get(key) != datetime.datetime.fromisoformat(at)
    )
    print(f"shipments whose stored change is not their newest: {wrong}")


if __name__ == "__main__":
    main()
