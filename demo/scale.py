"""The operator-scale dataset on PostgreSQL: 30 municipalities, 1.5M donors, 2M donations, 3M shipments.

Reference data (municipalities, providers, gifts, users) goes through the ORM; the large tables are
streamed with COPY on the same connection and transaction while the next chunk is generated
(generation in this process, ingestion in the server: two cores busy). Every record belongs to
the municipality of its donor.

For large loads the secondary indexes of the five large tables are dropped and re-created from
their exact definitions afterwards (building a btree once is far cheaper than maintaining it
row by row), and, when the database role may, foreign-key triggers are paused the way
pg_restore --disable-triggers does; every foreign key is then verified with one anti-join per
constraint before commit. All of it is one transaction: on any error nothing is left behind.
"""

from __future__ import annotations

import datetime
import queue
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction

from demo import data
from demo.people import Person, PersonMaker
from demo.plan import RESIDENT_SHARE, DonationPlan, Planner
from demo.seed import DEFAULT_SEED, SeededMunicipality, create_carriers, create_municipality
from demo.users import create_demo_users

DEFAULT_MUNICIPALITIES = 30
DEFAULT_DONORS = 1_500_000
DEFAULT_DONATIONS = 2_000_000
DEFAULT_SHIPMENTS = 3_000_000
REBUILD_INDEXES_FROM = 100_000  # donors; below this, index maintenance during COPY is cheaper
CHUNK_DONORS = 20_000
SAME_PERSON_ELSEWHERE_SHARE = 0.03
# Share of donations that get shipments at all (not residents, not declined): used to aim
# the number of shipments per donation at the requested total.
SHIPPING_SHARE = 0.95 * 1.02

LARGE_TABLES = [
    "crm_donor",
    "crm_donorphone",
    "crm_donoremail",
    "donations_sync_donation",
    "donations_sync_shipment",
]
COLUMNS = {
    "crm_donor": "id, municipality_id, donor_number, name, name_kana, postal_code, prefecture, "
    "address, building, is_resident, returned_mail, do_not_contact, note, created_at, updated_at",
    "crm_donorphone": "id, donor_id, municipality_id, e164, raw",
    "crm_donoremail": "id, donor_id, municipality_id, address",
    "donations_sync_donation": "id, municipality_id, donor_id, portal, portal_order_number, "
    "external_id, donated_at, paid_on, amount, payment_method, one_stop_requested, "
    "one_stop_received_on, receipt_issued_on, gift_declined, status, note, updated_at, import_key",
    "donations_sync_shipment": "id, municipality_id, donation_id, gift_item_id, delivery_number, "
    "ship_to_name, ship_to_kana, ship_to_postal_code, ship_to_address, ship_to_phone, "
    "desired_date, desired_time_slot, carrier_id, tracking_number, shipped_on, delivered_on, "
    "status, replaces_id, updated_at",
}
NULL = "\\N"


def _date(value: datetime.date | None) -> str:
    return value.isoformat() if value else NULL


def _tf(value: bool) -> str:
    return "t" if value else "f"


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` by ``weights`` exactly (largest remainder)."""
    whole = sum(weights)
    shares = [total * w / whole for w in weights]
    counts = [int(s) for s in shares]
    by_remainder = sorted(range(len(weights)), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


class CopyWriter:
    """Runs COPY statements on the Django connection's psycopg connection in a thread.

    The main thread hands over finished chunks and goes on generating; it does not touch the
    database until ``close``. Same connection, same transaction.
    """

    def __init__(self) -> None:
        self.raw = connection.connection
        self.queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(maxsize=6)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="copy-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error:
                continue
            table, payload = item
            try:
                with (
                    self.raw.cursor() as cur,
                    cur.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy,
                ):
                    copy.write(payload)
            except BaseException as exc:  # handed to the main thread in close()
                self.error = exc

    def put(self, table: str, lines: list[str]) -> None:
        if self.error:
            raise self.error
        if lines:
            self.queue.put((table, "".join(lines).encode()))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error:
            raise self.error


@dataclass
class Counters:
    donor: int
    phone: int
    email: int
    donation: int
    shipment: int
    created: dict[str, int] = field(default_factory=dict)


def _next_ids() -> Counters:
    with connection.cursor() as cur:
        ids = []
        for table in LARGE_TABLES:
            cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608 - fixed names
            ids.append(cur.fetchone()[0])
    return Counters(*ids)


def _secondary_indexes(cur) -> list[tuple[str, str]]:
    """Indexes of the large tables that back no primary-key/unique/exclusion constraint."""
    cur.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid = ANY(%s::regclass[])
          AND NOT EXISTS (
              SELECT 1 FROM pg_constraint c
              WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                AND c.contype IN ('p', 'u', 'x'))
        ORDER BY 1
        """,
        [LARGE_TABLES],
    )
    return list(cur.fetchall())


def _verify_foreign_keys(cur) -> None:
    """One anti-join per foreign key of the large tables; raises if any row dangles."""
    cur.execute(
        """
        SELECT c.conname, c.conrelid::regclass::text, a.attname,
               c.confrelid::regclass::text, fa.attname
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]
        WHERE c.contype = 'f' AND c.conrelid = ANY(%s::regclass[])
        """,
        [LARGE_TABLES],
    )
    for name, table, column, ref_table, ref_column in cur.fetchall():
        cur.execute(
            f"SELECT count(*) FROM {table} t WHERE t.{column} IS NOT NULL "  # noqa: S608
            f"AND NOT EXISTS (SELECT 1 FROM {ref_table} r WHERE r.{ref_column} = t.{column})"
        )
        dangling = cur.fetchone()[0]
        if dangling:
            raise RuntimeError(f"foreign key {name}: {dangling} rows point nowhere")


class _Loader:
    """Generates and streams the large tables; one instance per run."""

    def __init__(self, *, rng, people, planner, cities, ids, now, writer, progress) -> None:
        self.rng: random.Random = rng
        self.people: PersonMaker = people
        self.planner: Planner = planner
        self.cities: list[SeededMunicipality] = cities
        self.ids: Counters = ids
        self.now = now
        self.writer: CopyWriter = writer
        self.progress = progress
        self.carrier_ids: dict[str, int] = {}
        self.lines: dict[str, list[str]] = {t: [] for t in LARGE_TABLES}

    def flush(self) -> None:
        for table in LARGE_TABLES:
            self.writer.put(table, self.lines[table])
            self.lines[table] = []

    def run(self, donors_by_city: list[int], donations: int, shipments: int) -> dict[str, int]:
        remaining_donors = sum(donors_by_city)
        remaining_donations = donations
        remaining_shipments = shipments
        base, _ = divmod(donations, remaining_donors) if remaining_donors else (0, 0)
        extra_left = donations - base * remaining_donors
        pool: list[Person] = []  # people already known to earlier municipalities
        counts = dict.fromkeys(("donors", "phones", "emails", "donations", "shipments"), 0)
        r = self.rng
        for city, n_donors in zip(self.cities, donors_by_city, strict=True):
            place = city.spec.place
            muni = str(city.municipality.id)
            gift_ids = [str(g.id) for g in city.gifts]
            city_people: list[Person] = []
            for number in range(1, n_donors + 1):
                resident = r.random() < RESIDENT_SHARE
                if pool and not resident and r.random() < SAME_PERSON_ELSEWHERE_SHARE:
                    person = r.choice(pool)
                else:
                    person = self.people.person(place if resident else None)
                    if not resident and len(city_people) < 2000:
                        city_people.append(person)
                # Algorithm S: exactly ``extra_left`` donors get one donation more than base.
                k = base + (r.random() * remaining_donors < extra_left)
                extra_left -= k - base
                remaining_donors -= 1
                plans: list[DonationPlan] = []
                for _ in range(k):
                    wanted = (
                        remaining_shipments / (remaining_donations * SHIPPING_SHARE)
                        if remaining_donations and remaining_shipments > 0
                        else 0.0
                    )
                    plan = self.planner.donation(
                        city.catalogue, person, is_resident=resident, shipments_wanted=wanted
                    )
                    # Never more shipments than asked for: a 定期便 at the very end is cut short
                    # (replacements come after what they replace, so cutting keeps links valid).
                    del plan.shipments[max(remaining_shipments, 0) :]
                    remaining_shipments -= len(plan.shipments)
                    remaining_donations -= 1
                    plans.append(plan)
                self.donor(muni, number, person, resident, plans, gift_ids, counts)
                if number % CHUNK_DONORS == 0:
                    self.flush()
                    if self.progress:
                        self.progress(
                            f"  {city.spec.name}: 寄附者 {number:,}/{n_donors:,}"
                            f"（累計 寄附 {counts['donations']:,}・配送 {counts['shipments']:,}）"
                        )
            self.flush()
            pool = (pool + city_people)[-5000:]
        return counts

    def donor(self, muni, number, person, resident, plans, gift_ids, counts) -> None:
        ids = self.ids
        now = self.now
        lines = self.lines
        ids.donor += 1
        donor_id = str(ids.donor)
        returned = any(s.status == "returned" for p in plans for s in p.shipments)
        lines["crm_donor"].append(
            f"{donor_id}\t{muni}\t{number:07d}\t{person.name}\t{person.kana}\t{person.postal_code}\t"
            f"{person.prefecture}\t{person.address}\t{person.building}\t{_tf(resident)}\t"
            f"{_tf(returned)}\tf\t\t{now}\t{now}\n"
        )
        counts["donors"] += 1
        for e164, raw in person.phones:
            ids.phone += 1
            lines["crm_donorphone"].append(f"{ids.phone}\t{donor_id}\t{muni}\t{e164}\t{raw}\n")
            counts["phones"] += 1
        if person.email:
            ids.email += 1
            # As DonorEmail.save would store it.
            lines["crm_donoremail"].append(
                f"{ids.email}\t{donor_id}\t{muni}\t{person.email.lower()}\n"
            )
            counts["emails"] += 1
        donation_lines = lines["donations_sync_donation"]
        shipment_lines = lines["donations_sync_shipment"]
        carrier_ids = self.carrier_ids
        for p in plans:
            ids.donation += 1
            donation_id = str(ids.donation)
            donation_lines.append(
                f"{donation_id}\t{muni}\t{donor_id}\t{p.portal}\t{p.portal_order_number}\t"
                f"{p.external_id}\t{p.donated_at.isoformat()}\t{_date(p.paid_on)}\t{p.amount}\t"
                f"{p.payment_method}\t{_tf(p.one_stop_requested)}\t"
                f"{_date(p.one_stop_received_on)}\t{_date(p.receipt_issued_on)}\t"
                f"{_tf(p.gift_declined)}\t{p.status}\t\t{now}\t\n"
            )
            counts["donations"] += 1
            first_id = ids.shipment + 1
            for s in p.shipments:
                ids.shipment += 1
                to = s.ship_to
                shipment_lines.append(
                    f"{ids.shipment}\t{muni}\t{donation_id}\t{gift_ids[s.gift]}\t"
                    f"{s.delivery_number}\t{to.name}\t{to.kana}\t{to.postal_code}\t"
                    f"{to.full_address}\t{to.main_phone}\t{_date(s.desired_date)}\t"
                    f"{s.time_slot}\t{carrier_ids[s.carrier] if s.carrier else NULL}\t"
                    f"{s.tracking_number}\t{_date(s.shipped_on)}\t{_date(s.delivered_on)}\t"
                    f"{s.status}\t{first_id + s.replaces if s.replaces is not None else NULL}\t"
                    f"{now}\n"
                )
                counts["shipments"] += 1


def load(
    *,
    seed: int = DEFAULT_SEED,
    today: datetime.date | None = None,
    municipalities: int = DEFAULT_MUNICIPALITIES,
    donors: int = DEFAULT_DONORS,
    donations: int = DEFAULT_DONATIONS,
    shipments: int = DEFAULT_SHIPMENTS,
    with_users: bool = True,
    rebuild_indexes: bool | None = None,
    progress: Callable[[str], object] | None = None,
) -> dict[str, int]:
    if connection.vendor != "postgresql":
        raise RuntimeError("--scale は PostgreSQL 専用です（COPY を使います）。")
    if not 1 <= municipalities <= len(data.SCALE_MUNICIPALITIES):
        raise ValueError(f"municipalities must be 1..{len(data.SCALE_MUNICIPALITIES)}")
    today = today or datetime.date.today()  # noqa: DTZ011 - the dataset's calendar day
    if rebuild_indexes is None:
        rebuild_indexes = donors >= REBUILD_INDEXES_FROM
    rng = random.Random(seed)
    people = PersonMaker(rng)
    planner = Planner(rng, people, today)
    specs = data.SCALE_MUNICIPALITIES[:municipalities]
    say = progress or (lambda _msg: None)

    with transaction.atomic():
        carriers = create_carriers()
        cities = [create_municipality(spec, i, people, today) for i, spec in enumerate(specs)]
        users = (
            create_demo_users({c.spec.slug: c.municipality for c in cities}) if with_users else []
        )
        ids = _next_ids()
        with connection.cursor() as cur:
            cur.execute("SET LOCAL maintenance_work_mem = '1GB'")
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            may_pause_triggers = bool(cur.fetchone()[0])
            if may_pause_triggers:
                cur.execute("SET LOCAL session_replication_role = replica")
            indexes = _secondary_indexes(cur) if rebuild_indexes else []
            for name, _ in indexes:
                cur.execute(f"DROP INDEX {name}")
        say(f"COPY 開始（索引の再作成: {'する' if indexes else 'しない'}）")

        now = datetime.datetime.now(datetime.UTC).isoformat()
        writer = CopyWriter()
        loader = _Loader(
            rng=rng,
            people=people,
            planner=planner,
            cities=cities,
            ids=ids,
            now=now,
            writer=writer,
            progress=say,
        )
        loader.carrier_ids = {code: c.id for code, c in carriers.items()}
        try:
            counts = loader.run(
                allocate(donors, [c.spec.weight for c in cities]), donations, shipments
            )
        finally:
            writer.close()

        with connection.cursor() as cur:
            if indexes and not may_pause_triggers:
                # CREATE INDEX refuses to run while deferred foreign-key checks are queued.
                cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cur.execute("SET CONSTRAINTS ALL DEFERRED")
            for name, definition in indexes:
                say(f"索引を作成: {name}")
                cur.execute(definition)
            if indexes and _secondary_indexes(cur) != indexes:
                raise RuntimeError("re-created indexes differ from the migration-defined ones")
            if may_pause_triggers:
                cur.execute("SET LOCAL session_replication_role = origin")
                say("外部キーを検証")
                _verify_foreign_keys(cur)
            for table in LARGE_TABLES:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"GREATEST(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table}"
                )
    with connection.cursor() as cur:
        say("ANALYZE")
        for table in LARGE_TABLES:
            cur.execute(f"ANALYZE {table}")
    return {"municipalities": len(cities), **counts, "users": len(users)}
