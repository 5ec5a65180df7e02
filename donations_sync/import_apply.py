"""Applying a parsed export to the mirror, set-based, in batches.

Each batch of parsed rows is COPYed into session temporary tables (imp_row: one row per record,
imp_gift: one row per gift group) and applied with a fixed number of statements, whatever the
batch size: matching on the sources' numbers, INSERT ... ON CONFLICT for donors and gift items,
pre-allocated ids for new donors, donations and shipments, UPDATE ... FROM with IS DISTINCT FROM
so that an unchanged row writes nothing. Every batch commits with the run's counters and its
last line, so a run whose worker died resumes after the last committed batch.

Rows end as exactly one of imported (a new donation), updated (the donation, its donor, its
shipments or the donor's phones/e-mails changed), unchanged, or rejected (an ImportRejection
with line, column and a Japanese reason).

Blank cells never erase what the mirror knows (a later export that leaves 入金日 empty does not
un-pay a donation; the core's change feed may know more than the file): dates, texts and
tracking numbers are COALESCEd with the stored value. A column the mapping does not name is not
touched at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from crm import normalize
from crm.models import Carrier, Donor, DonorEmail, DonorPhone, Municipality, Provider
from donations_sync.imports import CsvImport, ParsedRow, RowError, open_import
from donations_sync.models import (
    Donation,
    DonorCallback,
    GiftItem,
    ImportedRow,
    ImportRejection,
    ImportRun,
    Shipment,
)

logger = logging.getLogger("donations_sync.imports")

BATCH_ROWS = 10_000
# PostgreSQL plans each batch's lookups from its statistics of the mirror's tables, and a bulk
# load must not wait for autovacuum (which may be slow, or off) to notice it: a run refreshes
# them when the rows it wrote pass 10,000, then each time they double, and at its end, so that a
# first import that grows the tables from nothing and the next run after it are planned on what
# the tables hold (a plan made on an "empty" 1M-row table scanned all of it for every batch).
ANALYZE_FIRST_AT = 10_000
# The provider gift items get when the file names none (an import knows only code and name).
UNKNOWN_PROVIDER_CODE = "UNSET"
UNKNOWN_PROVIDER_NAME = "未設定（取込）"

# How the sources write carrier names → crm Carrier.code (besides each carrier's own name,
# short name and code).
CARRIER_ALIASES: dict[str, tuple[str, ...]] = {
    "yamato": ("ヤマト運輸", "ヤマト", "クロネコヤマト", "クロネコ", "宅急便", "yamato"),
    "sagawa": ("佐川急便", "佐川", "飛脚宅配便", "sagawa"),
    "yupack": ("日本郵便", "ゆうパック", "郵便局", "ゆうパケット", "japanpost", "jppost"),
    "registered": ("書留", "簡易書留", "一般書留", "特定記録"),
    "international": ("ems", "国際郵便", "国際スピード郵便"),
}

# Column widths of the mirror (a longer value is rejected with its column, never cut).
_LIMITS_ROW = (
    ("donor_number", 40, "donor"),
    ("name", 80, "donor"),
    ("kana", 160, "donor"),
    ("prefecture", 10, "donor"),
    ("address", 200, "donor"),
    ("building", 120, "donor"),
    ("portal_order_number", 40, "donation"),
    ("external_id", 40, "donation"),
)
_LIMITS_GIFT = (
    ("code", 30),
    ("name", 200),
    ("ship_to_name", 80),
    ("ship_to_kana", 160),
    ("ship_to_address", 300),
    ("tracking_number", 20),
)

ROW_COLUMNS = (
    "line key grp reject reject_column donor_number name kana postal_code prefecture address "
    "building is_resident phone email portal portal_order_number external_id import_key "
    "donated_at paid_on amount payment_method gift_declined one_stop_requested "
    "one_stop_received_on receipt_issued_on note callback fingerprint"
).split()
GIFT_COLUMNS = (
    "line grp code name desired_date desired_time_slot carrier_id tracking_number "
    "tracking_valid shipped_on ship_to_name ship_to_kana ship_to_postal_code ship_to_address "
    "ship_to_phone tracking_column"
).split()

_CREATE = """
DROP TABLE IF EXISTS imp_seen, imp_known, imp_row, imp_gift;
-- Every number the file has shown so far, with its line; the first (lowest) line of a number is
-- its owner. Not unique: appending is ~3 times cheaper than INSERT ... ON CONFLICT into a
-- primary key, and the table takes the numbers of every batch.
CREATE TEMP TABLE imp_seen (key text NOT NULL, line int NOT NULL);
CREATE INDEX imp_seen_key ON imp_seen (key, line);
CREATE TEMP TABLE imp_known (key text NOT NULL, line int NOT NULL);
CREATE TEMP TABLE imp_row (
    line int PRIMARY KEY, key text NOT NULL, grp text NOT NULL, reject text,
    reject_column text, donor_number text, name text, kana text COLLATE "C", postal_code text,
    prefecture text, address text, building text, is_resident bool, phone text, email text,
    portal text, portal_order_number text, external_id text, import_key text,
    donated_at timestamptz, paid_on date, amount int, payment_method text, gift_declined bool,
    one_stop_requested bool, one_stop_received_on date, receipt_issued_on date, note text,
    callback text[], fingerprint text,
    donor_id bigint, new_donor bool NOT NULL DEFAULT false, donation_id bigint,
    new_donation bool NOT NULL DEFAULT false, changed bool NOT NULL DEFAULT false
) WITH (fillfactor = 50);
CREATE TEMP TABLE imp_gift (
    line int NOT NULL, grp int NOT NULL, code text, name text, desired_date date,
    desired_time_slot text, carrier_id bigint, tracking_number text, tracking_valid bool,
    shipped_on date, ship_to_name text, ship_to_kana text, ship_to_postal_code text,
    ship_to_address text, ship_to_phone text, tracking_column text,
    gift_item_id bigint, shipment_id bigint, new_shipment bool NOT NULL DEFAULT false,
    PRIMARY KEY (line, grp)
) WITH (fillfactor = 50);
"""


def _t(model: Any) -> str:
    return model._meta.db_table


T = {
    "donor": _t(Donor),
    "phone": _t(DonorPhone),
    "email": _t(DonorEmail),
    "donation": _t(Donation),
    "gift": _t(GiftItem),
    "shipment": _t(Shipment),
    "callback": _t(DonorCallback),
    "rejection": _t(ImportRejection),
    "imported_row": _t(ImportedRow),
}


def carrier_lookup() -> Callable[[str], int | None]:
    """A function from a carrier name as written to a Carrier id (None: not known)."""
    names: dict[str, int] = {}
    for carrier in Carrier.objects.all():
        for word in (
            carrier.name,
            carrier.short_name,
            carrier.code,
            *CARRIER_ALIASES.get(carrier.code, ()),
        ):
            names.setdefault(_carrier_word(word), carrier.pk)
    cache: dict[str, int | None] = {}

    def lookup(written: str) -> int | None:
        if written not in cache:
            word = _carrier_word(written)
            found = names.get(word)
            if (
                found is None
            ):  # "ヤマト運輸（宅急便）", "日本郵便(ゆうパック)": longest known name inside
                inside = [name for name in names if name and name in word]
                found = names[max(inside, key=len)] if inside else None
            cache[written] = found
        return cache[written]

    return lookup


def _carrier_word(text: str) -> str:
    return "".join(normalize.nfkc(text).lower().split())


def is_resident_address(municipality: Municipality, prefecture: str, address: str) -> bool:
    """住所 in the municipality itself: prefecture + municipality name start the address."""
    name = normalize.nfkc(municipality.name)
    if name[:1] not in address[: 12 + len(name)]:  # the common case, cheaply: elsewhere
        return False
    full = normalize.nfkc(prefecture + address).replace(" ", "").replace("\u3000", "")
    if full.startswith(normalize.nfkc(municipality.prefecture) + name):
        return True
    # No prefecture written: the municipality's name alone, if the prefecture was not another.
    return not prefecture and full.startswith(name)


class Importer:
    """Runs one ImportRun's file through the mirror (see the module docstring)."""

    def __init__(self, run: ImportRun, progress: Callable[[ImportRun], None] | None = None):
        self.run = run
        self.municipality = run.municipality
        self.m = run.municipality_id
        self.progress = progress
        self.carrier = carrier_lookup()
        self.provider_id = self._unknown_provider()
        self.analyzed = False
        self.sequences = self._sequences()
        self.written = 0  # rows this run imported or updated
        self.analyze_at = ANALYZE_FIRST_AT

    @staticmethod
    def _sequences() -> dict[str, str]:
        """The id sequences, named once: pg_get_serial_sequence in a statement would search
        pg_depend again for every row it numbers."""
        found = {}
        with connection.cursor() as cursor:
            for table in ("donor", "donation", "shipment"):
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [T[table]])
                found[f"pg_get_serial_sequence('{T[table]}', 'id')"] = (
                    "'" + cursor.fetchone()[0].replace("'", "''") + "'::regclass"
                )
        return found

    def _numbered(self, sql: str) -> str:
        for call, sequence in self.sequences.items():
            sql = sql.replace(call, sequence)
        return sql

    def _unknown_provider(self) -> int:
        provider, _ = Provider.objects.get_or_create(
            municipality_id=self.m,
            code=UNKNOWN_PROVIDER_CODE,
            defaults={"name": UNKNOWN_PROVIDER_NAME},
        )
        return provider.pk

    # --- the run -------------------------------------------------------------------------

    def execute(self) -> None:
        run = self.run
        storage = run.raw_file.storage
        with storage.open(run.raw_file.name, "rb") as stored:
            binary = getattr(stored, "file", stored)
            imported = open_import(binary, run.mapping, run.encoding or None, find_duplicates=False)
            ImportRun.objects.filter(pk=run.pk).update(
                detected_encoding=imported.encoding, unknown_columns=imported.unknown_columns
            )
            self._prepare(imported)
            # Parsing (Python) and applying (PostgreSQL) overlap: the statements run on a
            # second connection in a thread while the next batch is parsed. Inside a
            # transaction (tests) a second connection would not see its data: same thread.
            threaded = not connection.in_atomic_block
            sink = _ThreadSink(self) if threaded else _InlineSink(self)
            lookup = _KnownLookup(self, threaded)
            sink.start()
            try:
                self._feed(imported, binary, sink, lookup)
            finally:
                lookup.close()
                sink.close()
            self._fill_raw_cells(binary)

    def _feed(self, imported: CsvImport, binary, sink: _InlineSink, lookup: _KnownLookup) -> None:
        resume = self.run.resume_line
        # The fingerprint of a row depends on the mapping it is read with.
        salt = hashlib.blake2b(
            json.dumps([self.run.style, self.run.mapping], sort_keys=True).encode(),
            digest_size=16,
        ).digest()
        pending: list[tuple[int, list[str], str]] = []
        errors: list[RowError] = []
        skipped: list[tuple[str, int]] = []
        read = 0
        last_line = resume
        # A batch is parsed and sent once the next one has been read: meanwhile its fingerprints
        # are looked up (on the lookup's connection), so reading does not wait for the database.
        waiting: tuple | None = None
        for record in imported.records():
            read += 1
            if isinstance(record, RowError):
                if record.line > resume:
                    errors.append(record)
                    last_line = record.line
            else:
                line, raw = record
                if line <= resume:  # applied by an attempt that died: only its key matters
                    row = imported.parse_record(line, raw)
                    if isinstance(row, ParsedRow):
                        skipped.append((self._key(row), line))
                        if len(skipped) >= BATCH_ROWS:
                            sink.put(("remember", skipped))
                            skipped = []
                    continue
                digest = hashlib.blake2b("\x1f".join(raw).encode(), digest_size=16, key=salt)
                pending.append((line, raw, digest.hexdigest()))
                last_line = line
            if len(pending) + len(errors) >= BATCH_ROWS:
                if skipped:
                    sink.put(("remember", skipped))
                    skipped = []
                batch = (pending, errors, read, last_line, _position(binary))
                known = lookup.submit([fingerprint for _, _, fingerprint in pending])
                if waiting:
                    self._send(imported, sink, *waiting)
                waiting = (*batch, known)
                pending, errors = [], []
        if skipped:
            sink.put(("remember", skipped))
        if waiting:
            self._send(imported, sink, *waiting)
        if pending or errors or read == 0:
            known = lookup.submit([fingerprint for _, _, fingerprint in pending])
            self._send(imported, sink, pending, errors, read, last_line, _position(binary), known)
        sink.put(("end",))

    def _send(
        self,
        imported: CsvImport,
        sink: _InlineSink,
        pending: list[tuple[int, list[str], str]],
        errors: list[RowError],
        read: int,
        last_line: int,
        position: int,
        looked_up: Callable[[], dict[str, str]],
    ) -> None:
        """Parse what an earlier run did not already apply as it is, and hand the batch on."""
        known = looked_up()
        rows: list[tuple] = []
        gifts: list[tuple] = []
        # Rows known unchanged still hold their number: a later row repeating it is a duplicate.
        known_keys: list[tuple[str, int]] = []
        for line, raw, fingerprint in pending:
            if fingerprint in known:
                if key := known[fingerprint]:
                    known_keys.append((key, line))
                    continue
                order, external_id = imported.record_numbers(raw)
                if order:
                    known_keys.append((f"o:{order}", line))
                elif external_id:
                    known_keys.append((f"x:{external_id}", line))
                else:
                    row = imported.parse_record(line, raw)
                    if isinstance(row, ParsedRow):
                        known_keys.append((self._key(row), line))
                continue
            row = imported.parse_record(line, raw)
            if isinstance(row, RowError):
                errors.append(row)
            else:
                self._stage(row, fingerprint, rows, gifts)
        sink.put(("batch", rows, gifts, errors, known_keys, read, last_line, position))

    def _known(self, fingerprints: list[str]) -> dict[str, str]:
        """Fingerprints earlier runs applied in this municipality (rows known unchanged), with
        each row's number ('' when not recorded)."""
        if not fingerprints:
            return {}
        began = time.perf_counter()
        # One array parameter, not 10,000 placeholders; one index probe per fingerprint (a
        # LATERAL subquery): given the array as "= ANY", the planner reads the whole table once
        # it is large, ~2.5 times slower at a million rows and slower still as it grows.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT f.fingerprint, k.key FROM unnest(%s::text[]) AS f(fingerprint) "  # noqa: S608
                f"CROSS JOIN LATERAL (SELECT i.key FROM {T['imported_row']} i "
                "WHERE i.municipality_id = %s AND i.fingerprint = f.fingerprint "
                "AND i.run_id IS DISTINCT FROM %s LIMIT 1) k",
                [fingerprints, self.m, self.run.pk],
            )
            known = dict(cursor.fetchall())
        STATEMENT_SECONDS["(known)"] += time.perf_counter() - began
        return known

    def _create_tables(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(_CREATE)

    def _drop_tables(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS imp_seen, imp_known, imp_row, imp_gift")

    def _do(self, item: tuple) -> None:
        if item[0] == "remember":
            self._remember(item[1])
        elif item[0] == "end":
            if self.written:
                self._analyze()
        else:
            self._batch(*item[1:])
            if self.written >= self.analyze_at:
                self._analyze()
                self.analyze_at = 2 * self.written

    def _analyze(self) -> None:
        """Fresh planner statistics of the tables the run writes (see ANALYZE_FIRST_AT)."""
        tables = ("donor", "phone", "email", "donation", "gift", "shipment", "imported_row")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE " + ", ".join(T[t] for t in tables))

    def _prepare(self, imported: CsvImport) -> None:
        """Which fields the file has: a field the header lacks is never written."""
        plan = imported._plan  # noqa: SLF001 - same app: where each field's cells are
        self.present = {
            (block, name) for (block, name, _n), (indices, _c) in plan.items() if indices
        }
        self.tracking_column = {
            n: column
            for (block, name, n), (indices, column) in plan.items()
            if block == "gift" and name == "tracking_number" and indices
        }
        self.encoding = imported.encoding
        self.header = imported.header
        # The reader merges the consecutive rows of a 楽天 order; a row of it further down is
        # refused rather than merged (see CsvImport.records).
        self.duplicate_reason = (
            "行目からの注文と同じ受注番号です（同じ注文の商品の行は続けて並べてください。"
            "この行は取り込んでいません）"
            if imported.one_row_per_item
            else "行目と同じ番号の寄附です（同じファイル内の重複した行は最初の行だけを取り込みます）"
        )

    def _key(self, row: ParsedRow) -> str:
        d = row.donation
        if d.portal_order_number:
            return f"o:{d.portal_order_number}"
        if d.external_id:
            return f"x:{d.external_id}"
        return f"k:{self._import_key(row)}"

    @staticmethod
    def _import_key(row: ParsedRow) -> str:
        d = row.donation
        if d.portal_order_number or d.external_id:
            return ""
        key = f"{row.donor.donor_number}|{d.donated_at:%Y%m%d%H%M%S}|{d.amount}"
        return key if len(key) <= 64 else hashlib.sha256(key.encode()).hexdigest()

    def _remember(self, keys: list[tuple[str, int]]) -> None:
        """Keys of rows a previous attempt already applied (a resumed run): still duplicates."""
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("TRUNCATE imp_row")
            with cursor.cursor.copy("COPY imp_row (key, line, grp) FROM STDIN") as copy:
                for key, line in keys:
                    copy.write_row((key, line, ""))
            cursor.execute("INSERT INTO imp_seen (key, line) SELECT key, line FROM imp_row")

    # --- one batch -----------------------------------------------------------------------

    def _batch(
        self,
        rows: list[tuple],
        gifts: list[tuple],
        errors: list[RowError],
        known_keys: list[tuple[str, int]],
        read: int,
        last_line: int,
        position: int,
    ) -> None:
        began = time.perf_counter()
        with transaction.atomic():
            with connection.cursor() as cursor:
                # A batch commits with its run's resume line: if the server lost the commit in a
                # crash, it lost both, and the run applies the batch again. So the commit need
                # not wait for the WAL to reach the disk.
                cursor.execute("SET LOCAL synchronous_commit = off")
                # The batch joins 10,000 staged rows to tables of millions: with the default
                # cost of a random read, fresh statistics make the planner read a whole mirror
                # table (hash join) rather than probe its index 10,000 times. The mirror's pages
                # are in memory or on SSD, where a random read costs about a sequential one.
                cursor.execute("SET LOCAL random_page_cost = 1.1")
                cursor.execute("TRUNCATE imp_row, imp_gift")
                self._copy(cursor, rows, gifts)
                cursor.execute("TRUNCATE imp_known")
                if known_keys:
                    with cursor.cursor.copy("COPY imp_known (key, line) FROM STDIN") as copy:
                        for key in known_keys:
                            copy.write_row(key)
                cursor.execute(_SQL_SEEN)
                STATEMENT_SECONDS["(COPY)"] += time.perf_counter() - began
                counts = self._apply(cursor) if rows else (0, 0, 0, 0, 0)
            if errors:
                ImportRejection.objects.bulk_create(
                    ImportRejection(
                        run_id=self.run.pk,
                        line=e.line,
                        column=e.column[:100],
                        reason=e.reason[:300],
                        raw=e.raw,
                    )
                    for e in errors
                )
            imported, updated, unchanged, rejected, callbacks = counts
            self.written += imported + updated
            ImportRun.objects.filter(pk=self.run.pk).update(
                imported=F("imported") + imported,
                updated=F("updated") + updated,
                unchanged=F("unchanged") + unchanged + len(known_keys),
                rejected=F("rejected") + rejected + len(errors),
                needs_callback=F("needs_callback") + callbacks,
                rows_read=read,
                bytes_read=position,
                resume_line=last_line,
                heartbeat_at=timezone.now(),
            )
            committing = time.perf_counter()
        STATEMENT_SECONDS["(commit)"] += time.perf_counter() - committing
        STATEMENT_SECONDS["(batch)"] += time.perf_counter() - began
        self.run.refresh_from_db()
        if self.progress:
            self.progress(self.run)

    def _stage(
        self, row: ParsedRow, fingerprint: str, staged: list[tuple], gifts: list[tuple]
    ) -> None:
        """The row as staging-table tuples (compact: a batch waiting holds only these)."""
        municipality = self.municipality
        carrier = self.carrier
        fold = _kana_without_noise
        donor, d = row.donor, row.donation
        kana = fold(donor.kana)
        phone = donor.phone or ""
        email = donor.email
        if donor.donor_number:
            grp = f"n:{donor.donor_number}"
        elif phone and kana:
            grp = f"p:{phone}|{kana}"
        elif email and kana:
            grp = f"e:{email}|{kana}"
        else:
            grp = f"l:{row.line}"
        reject, column = self._too_long(row, kana)
        staged.append(
            (
                row.line,
                self._key(row),
                grp,
                reject,
                column,
                donor.donor_number,
                donor.name,
                kana,
                donor.postal_code,
                donor.prefecture,
                donor.address,
                donor.building,
                is_resident_address(municipality, donor.prefecture, donor.address),
                phone,
                email,
                d.portal,
                d.portal_order_number,
                d.external_id,
                self._import_key(row),
                d.donated_at,
                d.paid_on,
                d.amount,
                d.payment_method,
                d.gift_declined,
                d.one_stop_requested,
                d.one_stop_received_on,
                d.receipt_issued_on,
                d.note,
                row.needs_callback,
                fingerprint,
            )
        )
        for g in row.gifts:
            gifts.append(
                (
                    row.line,
                    g.group,
                    g.code or g.name[:30] or "未設定",
                    g.name,
                    g.desired_date,
                    g.desired_time_slot,
                    carrier(g.carrier) if g.carrier else None,
                    g.tracking_number,
                    g.tracking_valid,
                    g.shipped_on,
                    g.ship_to_name,
                    fold(g.ship_to_kana),
                    g.ship_to_postal_code,
                    g.ship_to_address,
                    g.ship_to_phone or "",
                    self.tracking_column.get(g.group, ""),
                )
            )

    def _copy(self, cursor, staged: list[tuple], gifts: list[tuple]) -> None:
        with cursor.cursor.copy(f"COPY imp_row ({', '.join(ROW_COLUMNS)}) FROM STDIN") as copy:
            for values in staged:
                copy.write_row(values)
        with cursor.cursor.copy(f"COPY imp_gift ({', '.join(GIFT_COLUMNS)}) FROM STDIN") as copy:
            for values in gifts:
                copy.write_row(values)
        if (
            not self.analyzed and staged
        ):  # batches look alike: the first one's statistics serve them all
            cursor.execute("ANALYZE imp_row; ANALYZE imp_gift")
            self.analyzed = True

    def _too_long(self, row: ParsedRow, kana: str) -> tuple[str | None, str]:
        for name, limit, block in _LIMITS_ROW:
            value = kana if name == "kana" else getattr(getattr(row, block), name)
            if len(value) > limit:
                return f"{limit}文字を超えています（{len(value)}文字）", self._column(block, name)
        for g in row.gifts:
            for name, limit in _LIMITS_GIFT:
                value = getattr(g, name)
                if len(value) > limit:
                    return (
                        f"{limit}文字を超えています（{len(value)}文字）",
                        self._column("gift", name, g.group),
                    )
        return None, ""

    def _column(self, block: str, name: str, n: int = 1) -> str:
        mapping = self.run.mapping.get(block, {}).get(name, "")
        first = mapping if isinstance(mapping, str) else (mapping[0] if mapping else "")
        return first.replace("{n}", str(n))

    def _apply(self, cursor) -> tuple[int, int, int, int, int]:
        m = self.m
        run_sql(cursor, _SQL_MATCH, m, duplicate_reason=self.duplicate_reason)
        run_sql(cursor, self._numbered(self._donor_sql()), m)
        run_sql(cursor, self._numbered(self._donation_sql()), m)
        run_sql(cursor, self._numbered(self._shipment_sql()), m, provider=self.provider_id)
        run_sql(cursor, _SQL_FINISH, m, run=self.run.pk)
        cursor.execute(
            """SELECT
                count(*) FILTER (WHERE reject IS NULL AND new_donation),
                count(*) FILTER (WHERE reject IS NULL AND NOT new_donation AND changed),
                count(*) FILTER (WHERE reject IS NULL AND NOT new_donation AND NOT changed),
                count(*) FILTER (WHERE reject IS NOT NULL),
                count(*) FILTER (WHERE reject IS NULL AND cardinality(callback) > 0)
            FROM imp_row"""
        )
        return tuple(cursor.fetchone())  # type: ignore[return-value]

    # --- statements that depend on which columns the file has ---------------------------

    def _has(self, block: str, *names: str) -> bool:
        return any((block, name) in self.present for name in names)

    def _donor_sql(self) -> str:
        # Only fields the file has are updated; a blank cell keeps what is stored.
        fields = [
            ("name", "name", "name"),
            ("name_kana", "kana", "kana"),
            ("postal_code", "postal_code", "postal_code"),
            ("prefecture", "prefecture", "prefecture"),
            ("address", "address", "address"),
            ("building", "building", "building"),
        ]
        used = [(col, src) for col, src, field in fields if self._has("donor", field)]
        sets = [f"{col} = COALESCE(NULLIF(EXCLUDED.{col}, ''), d.{col})" for col, _ in used]
        if self._has("donor", "address", "prefecture"):
            sets.append("is_resident = EXCLUDED.is_resident")
        old = ", ".join(f"d.{col}" for col, _ in used) + ", d.is_resident"
        new = ", ".join(f"COALESCE(NULLIF(EXCLUDED.{col}, ''), d.{col})" for col, _ in used)
        new += (
            ", EXCLUDED.is_resident"
            if self._has("donor", "address", "prefecture")
            else ", d.is_resident"
        )
        return _SQL_DONORS.format(sets=", ".join(sets) or "name = d.name", old=old, new=new, **T)

    def _donation_sql(self) -> str:
        cols = []
        for col, kind in (
            ("donated_at", "date"),
            ("paid_on", "date"),
            ("amount", "date"),
            ("payment_method", "text"),
            ("gift_declined", "value"),
            ("one_stop_requested", "value"),
            ("one_stop_received_on", "date"),
            ("receipt_issued_on", "date"),
            ("note", "text"),
        ):
            if not self._has("donation", col):
                continue
            if kind == "date":
                cols.append((col, f"COALESCE(r.{col}, d.{col})"))
            elif kind == "text":
                cols.append((col, f"COALESCE(NULLIF(r.{col}, ''), d.{col})"))
            else:
                cols.append((col, f"r.{col}"))
        paid = "COALESCE(r.paid_on, d.paid_on)" if self._has("donation", "paid_on") else "d.paid_on"
        status = (
            f"CASE WHEN d.status = 'applied' AND {paid} IS NOT NULL THEN 'paid' ELSE d.status END"
        )
        cols.append(("status", status))
        cols.append(("donor_id", "r.donor_id"))
        sets = ", ".join(f"{c} = {v}" for c, v in cols)
        old = ", ".join(f"d.{c}" for c, _ in cols)
        new = ", ".join(v for _, v in cols)
        return _SQL_DONATIONS.format(sets=sets, old=old, new=new, **T)

    def _shipment_sql(self) -> str:
        cols = []
        for col, kind in (
            ("desired_date", "date"),
            ("desired_time_slot", "text"),
            ("carrier_id", "id"),
            ("tracking_number", "text"),
            ("shipped_on", "date"),
            ("ship_to_name", "text"),
            ("ship_to_kana", "text"),
            ("ship_to_postal_code", "text"),
            ("ship_to_address", "text"),
            ("ship_to_phone", "text"),
        ):
            field = "carrier" if col == "carrier_id" else col
            if not self._has("gift", field):
                continue
            if kind == "text":
                cols.append((col, f"COALESCE(NULLIF(g.{col}, ''), s.{col})"))
            else:
                cols.append((col, f"COALESCE(g.{col}, s.{col})"))
        if self._has("gift", "tracking_number"):
            cols.append(
                (
                    "tracking_valid",
                    "CASE WHEN g.tracking_number <> '' THEN g.tracking_valid ELSE s.tracking_valid END",
                )
            )
        shipped = (
            "COALESCE(g.shipped_on, s.shipped_on)"
            if self._has("gift", "shipped_on")
            else "s.shipped_on"
        )
        cols.append(
            (
                "status",
                f"CASE WHEN s.status IN ('pending', 'requested') AND {shipped} IS NOT NULL "
                "THEN 'shipped' ELSE s.status END",
            )
        )
        sets = ", ".join(f"{c} = {v}" for c, v in cols)
        old = ", ".join(f"s.{c}" for c, _ in cols)
        new = ", ".join(v for _, v in cols)
        return _SQL_SHIPMENTS.format(sets=sets, old=old, new=new, **T)

    # --- raw cells of rows rejected in SQL (duplicates, tracking conflicts, lengths) -------

    def _fill_raw_cells(self, binary) -> None:
        lines = set(
            ImportRejection.objects.filter(run_id=self.run.pk, raw=[]).values_list(
                "line", flat=True
            )
        )
        if not lines:
            return
        binary.seek(0)
        # Records as the reader makes them: a 楽天 order's rows come back together.
        records = open_import(binary, self.run.mapping, self.encoding, find_duplicates=False)
        found: dict[int, list[str]] = {}
        for record in records.records():
            if not isinstance(record, RowError) and record[0] in lines:
                found[record[0]] = record[1]
                if len(found) >= 5_000:
                    self._store_raw(found)
                    found = {}
        self._store_raw(found)

    def _store_raw(self, found: dict[int, list[str]]) -> None:
        rejections = list(
            ImportRejection.objects.filter(run_id=self.run.pk, line__in=list(found), raw=[])
        )
        for rejection in rejections:
            rejection.raw = found[rejection.line]
        ImportRejection.objects.bulk_update(rejections, ["raw"], batch_size=1000)


# Seconds spent per statement (its first words), for benchmarks.imports.
STATEMENT_SECONDS: Counter[str] = Counter()


_KANA_NOISE = re.compile(r"[\s・･,、.。]")


def _kana_without_noise(kana: str) -> str:
    """normalize.normalize_kana of a reading the reader already folded."""
    return _KANA_NOISE.sub("", kana) if kana else ""


def _position(binary) -> int:
    try:
        return binary.tell()
    except (OSError, ValueError):
        return 0


class _KnownLookup:
    """Looks up batches' fingerprints (Importer._known) on a thread with its own connection, one
    batch at a time; inside a transaction (tests) a second connection would not see its data:
    then at once, on this thread."""

    def __init__(self, importer: Importer, threaded: bool):
        self.importer = importer
        self.executor = ThreadPoolExecutor(1, "import-known") if threaded else None
        # The first import into a municipality: no row can be known, nothing to look up.
        self.none_known = not (
            ImportedRow.objects.filter(municipality_id=importer.m)
            .exclude(run_id=importer.run.pk)
            .exists()
        )

    def submit(self, fingerprints: list[str]) -> Callable[[], dict[str, str]]:
        if self.none_known:
            return dict
        if self.executor is None:
            known = self.importer._known(fingerprints)
            return lambda: known
        return self.executor.submit(self.importer._known, fingerprints).result

    def close(self) -> None:
        if self.executor is not None:
            try:
                # Resolved on that thread: Django's connections are per thread.
                self.executor.submit(lambda: connection.close()).result()
            except Exception:  # the connection may be gone; the sink must still be closed
                logger.debug("Closing the lookup's connection failed", exc_info=True)
            self.executor.shutdown()


class _InlineSink:
    """Applies each batch as it comes, on this thread's connection."""

    def __init__(self, importer: Importer):
        self.importer = importer

    def start(self) -> None:
        self.importer._create_tables()

    def put(self, item: tuple) -> None:
        self.importer._do(item)

    def close(self) -> None:
        self.importer._drop_tables()


class _ThreadSink(_InlineSink):
    """Applies batches on a thread (its own connection); one batch waits while one is applied,
    so memory holds at most three batches. An error there stops the run at the next put."""

    def __init__(self, importer: Importer):
        super().__init__(importer)
        self.queue: queue.Queue[tuple | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="import-apply", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            try:
                self.importer._create_tables()
            except BaseException as error:
                self.error = error
            while (item := self.queue.get()) is not None:
                if self.error is None:
                    try:
                        self.importer._do(item)
                    except BaseException as error:
                        self.error = error
        finally:
            try:
                self.importer._drop_tables()
            except Exception:  # the connection may be gone; the session's tables go with it
                logger.debug("Dropping import tables failed", exc_info=True)
            connection.close()

    def put(self, item: tuple) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


def run_sql(cursor, sql: str, m: int, **params: Any) -> None:
    for statement in sql.split(";\n"):
        if statement.strip():
            began = time.perf_counter()
            cursor.execute(statement, {"m": m, **params} if "%(" in statement else None)
            STATEMENT_SECONDS[" ".join(statement.split()[:8])] += time.perf_counter() - began


_SQL_SEEN = """
INSERT INTO imp_seen (key, line)
    SELECT key, line FROM imp_row UNION ALL SELECT key, line FROM imp_known
"""

# Lookups into the mirror are correlated subqueries (one index probe per staged row), not joins:
# a join's plan would hash the whole donation or shipment table, which grows with every batch.
# A staged row is rewritten only when it matched (a new donation's row is not touched here).
_SQL_MATCH = """
UPDATE imp_row r SET reject = x.first_line || %(duplicate_reason)s, reject_column = ''
    FROM (
        SELECT r2.line, (SELECT min(s.line) FROM imp_seen s WHERE s.key = r2.key) AS first_line
        FROM imp_row r2 WHERE r2.reject IS NULL
    ) x WHERE x.line = r.line AND x.first_line <> r.line;
UPDATE imp_row r SET donation_id = x.id FROM (
        SELECT r2.line, COALESCE(
            CASE WHEN r2.portal_order_number <> '' THEN (
                SELECT d.id FROM {donation} d WHERE d.municipality_id = %(m)s
                AND d.portal = r2.portal AND d.portal_order_number = r2.portal_order_number
                AND NOT (d.portal_order_number = '')) END,
            CASE WHEN r2.external_id <> '' THEN (
                SELECT d.id FROM {donation} d WHERE d.municipality_id = %(m)s
                AND d.external_id = r2.external_id AND NOT (d.external_id = '')) END,
            CASE WHEN r2.import_key <> '' THEN (
                SELECT d.id FROM {donation} d WHERE d.municipality_id = %(m)s
                AND d.import_key = r2.import_key AND NOT (d.import_key = '')) END
        ) AS id FROM imp_row r2
    ) x WHERE x.line = r.line AND x.id IS NOT NULL;
UPDATE imp_gift g SET gift_item_id = gi.id FROM {gift} gi
    WHERE gi.municipality_id = %(m)s AND gi.code = g.code;
UPDATE imp_gift g SET shipment_id = x.id FROM (
        SELECT g2.line, g2.grp, (
            SELECT min(s.id) FROM {shipment} s WHERE s.donation_id = r.donation_id
            AND s.gift_item_id = g2.gift_item_id AND s.delivery_number = g2.grp
            AND s.replaces_id IS NULL
        ) AS id
        FROM imp_gift g2 JOIN imp_row r ON r.line = g2.line WHERE r.donation_id IS NOT NULL
    ) x WHERE x.line = g.line AND x.grp = g.grp AND x.id IS NOT NULL;
UPDATE imp_row r SET reject = '伝票番号 ' || g.tracking_number || ' は別の寄附の配送で使われています',
        reject_column = g.tracking_column
    FROM imp_gift g WHERE g.line = r.line AND r.reject IS NULL AND g.tracking_number <> ''
    AND g.carrier_id IS NOT NULL AND (
        SELECT 1 FROM {shipment} s WHERE s.carrier_id = g.carrier_id
        AND s.tracking_number = g.tracking_number AND NOT (s.tracking_number = '')
        -- The exclusion constraint's GiST index leads with the number's hash: naming it keeps
        -- a plan made on a table still filling (no statistics yet) from scanning all of it.
        AND hashtext(s.tracking_number) = hashtext(g.tracking_number)
        AND s.donation_id IS DISTINCT FROM r.donation_id LIMIT 1) IS NOT NULL;
UPDATE imp_row r SET reject = '伝票番号 ' || x.tracking_number
            || ' がこのファイルの別の注文の行（' || x.first_line || '行目）にもあります',
        reject_column = x.tracking_column
    FROM (
        SELECT g.line, g.tracking_number, g.tracking_column, o.owner,
            first_value(g.line) OVER w AS first_line, first_value(o.owner) OVER w AS first_owner
        FROM imp_gift g JOIN imp_row r2 ON r2.line = g.line AND r2.reject IS NULL
        -- One row is one order: the donation the mirror has for it, else the row itself.
        CROSS JOIN LATERAL (SELECT COALESCE('d' || r2.donation_id, 'l' || r2.line) AS owner) o
        WHERE g.tracking_number <> '' AND g.carrier_id IS NOT NULL
        WINDOW w AS (PARTITION BY g.carrier_id, g.tracking_number ORDER BY g.line, g.grp)
    ) x WHERE x.line = r.line AND x.owner <> x.first_owner AND r.reject IS NULL;
DELETE FROM imp_gift g USING imp_row r WHERE r.line = g.line AND r.reject IS NOT NULL
""".format(**T)  # noqa: S608 - table names come from the models; values are bound

_SQL_DONORS = """
WITH src AS (
    SELECT DISTINCT ON (donor_number) * FROM imp_row
    WHERE reject IS NULL AND donor_number <> '' ORDER BY donor_number, line
), up AS (
    INSERT INTO {donor} AS d (municipality_id, donor_number, name, name_kana, postal_code,
        prefecture, address, building, is_resident, returned_mail, do_not_contact, note,
        created_at, updated_at)
    SELECT %(m)s, donor_number, name, kana, postal_code, prefecture, address, building,
        is_resident, false, false, '', now(), now() FROM src
    ON CONFLICT (municipality_id, donor_number) WHERE NOT (donor_number = '')
    DO UPDATE SET {sets}, updated_at = now()
    WHERE ({old}) IS DISTINCT FROM ({new})
    RETURNING d.donor_number
)
UPDATE imp_row r SET changed = true FROM up
    WHERE r.donor_number = up.donor_number AND r.reject IS NULL AND NOT r.changed;
UPDATE imp_row r SET donor_id = (
        SELECT d.id FROM {donor} d WHERE d.municipality_id = %(m)s
        AND NOT (d.donor_number = '') AND d.donor_number = r.donor_number)
    WHERE r.donor_number <> '' AND r.reject IS NULL;
UPDATE imp_row r SET donor_id = (SELECT d.donor_id FROM {donation} d WHERE d.id = r.donation_id)
    WHERE r.donation_id IS NOT NULL AND r.donor_id IS NULL AND r.reject IS NULL;
UPDATE imp_row r SET donor_id = x.donor_id FROM (
        SELECT DISTINCT ON (r2.grp) r2.grp, p.donor_id FROM imp_row r2
        JOIN {phone} p ON p.municipality_id = %(m)s AND p.e164 = r2.phone
        JOIN {donor} d ON d.id = p.donor_id AND d.name_kana = r2.kana
        WHERE r2.donor_id IS NULL AND r2.reject IS NULL AND r2.phone <> '' AND r2.kana <> ''
        ORDER BY r2.grp, p.donor_id
    ) x WHERE x.grp = r.grp AND r.donor_id IS NULL AND r.reject IS NULL;
UPDATE imp_row r SET donor_id = x.donor_id FROM (
        SELECT DISTINCT ON (r2.grp) r2.grp, e.donor_id FROM imp_row r2
        JOIN {email} e ON e.municipality_id = %(m)s AND e.address = r2.email
        JOIN {donor} d ON d.id = e.donor_id AND d.name_kana = r2.kana
        WHERE r2.donor_id IS NULL AND r2.reject IS NULL AND r2.email <> '' AND r2.kana <> ''
        ORDER BY r2.grp, e.donor_id
    ) x WHERE x.grp = r.grp AND r.donor_id IS NULL AND r.reject IS NULL;
WITH firsts AS (
    SELECT grp, min(line) AS line FROM imp_row
    WHERE donor_id IS NULL AND reject IS NULL GROUP BY grp
), ids AS (
    SELECT grp, line, nextval(pg_get_serial_sequence('{donor}', 'id')) AS id FROM firsts
)
UPDATE imp_row r SET donor_id = ids.id, new_donor = (r.line = ids.line), changed = true
    FROM ids WHERE r.grp = ids.grp AND r.donor_id IS NULL AND r.reject IS NULL;
INSERT INTO {donor} (id, municipality_id, donor_number, name, name_kana, postal_code, prefecture,
        address, building, is_resident, returned_mail, do_not_contact, note, created_at,
        updated_at)
    SELECT donor_id, %(m)s, donor_number, name, kana, postal_code, prefecture, address, building,
        is_resident, false, false, '', now(), now()
    FROM imp_row WHERE new_donor;
WITH added AS (
    INSERT INTO {phone} (donor_id, municipality_id, e164, raw)
    SELECT DISTINCT donor_id, %(m)s, phone, phone FROM imp_row r
    WHERE reject IS NULL AND phone <> '' AND NOT EXISTS (
        SELECT 1 FROM {phone} p WHERE p.donor_id = r.donor_id AND p.e164 = r.phone)
    ON CONFLICT (donor_id, e164) DO NOTHING
    RETURNING donor_id
)
UPDATE imp_row r SET changed = true FROM added WHERE r.donor_id = added.donor_id
    AND r.reject IS NULL AND NOT r.changed;
WITH added AS (
    INSERT INTO {email} (donor_id, municipality_id, address)
    SELECT DISTINCT donor_id, %(m)s, email FROM imp_row r
    WHERE reject IS NULL AND email <> '' AND NOT EXISTS (
        SELECT 1 FROM {email} e WHERE e.donor_id = r.donor_id AND e.address = r.email)
    ON CONFLICT (donor_id, address) DO NOTHING
    RETURNING donor_id
)
UPDATE imp_row r SET changed = true FROM added WHERE r.donor_id = added.donor_id
    AND r.reject IS NULL AND NOT r.changed
"""

_SQL_DONATIONS = """
UPDATE imp_row SET donation_id = nextval(pg_get_serial_sequence('{donation}', 'id')),
        new_donation = true
    WHERE donation_id IS NULL AND reject IS NULL;
INSERT INTO {donation} (id, municipality_id, donor_id, portal, portal_order_number, external_id,
        import_key, donated_at, paid_on, amount, payment_method, one_stop_requested,
        one_stop_received_on, receipt_issued_on, gift_declined, status, note, updated_at)
    SELECT donation_id, %(m)s, donor_id, portal, portal_order_number, external_id, import_key,
        donated_at, paid_on, amount, payment_method, one_stop_requested, one_stop_received_on,
        receipt_issued_on, gift_declined,
        CASE WHEN paid_on IS NOT NULL THEN 'paid' ELSE 'applied' END, note, now()
    FROM imp_row WHERE new_donation;
WITH changed AS (
    UPDATE {donation} d SET {sets}, updated_at = now()
    FROM imp_row r
    WHERE d.id = r.donation_id AND NOT r.new_donation AND r.reject IS NULL
    AND ({old}) IS DISTINCT FROM ({new})
    RETURNING d.id
)
UPDATE imp_row r SET changed = true FROM changed WHERE r.donation_id = changed.id
    AND NOT r.changed
"""

_SQL_SHIPMENTS = """
INSERT INTO {gift} (municipality_id, provider_id, code, name, deliveries, perishable)
    SELECT DISTINCT ON (code) %(m)s, %(provider)s, code, name, 1, false FROM imp_gift
    WHERE gift_item_id IS NULL ORDER BY code, line
    ON CONFLICT (municipality_id, code) DO NOTHING;
UPDATE imp_gift g SET gift_item_id = gi.id FROM {gift} gi
    WHERE g.gift_item_id IS NULL AND gi.municipality_id = %(m)s AND gi.code = g.code;
UPDATE imp_gift SET shipment_id = nextval(pg_get_serial_sequence('{shipment}', 'id')),
        new_shipment = true
    WHERE shipment_id IS NULL;
INSERT INTO {shipment} (id, municipality_id, donation_id, gift_item_id, delivery_number,
        ship_to_name, ship_to_kana, ship_to_postal_code, ship_to_address, ship_to_phone,
        desired_date, desired_time_slot, carrier_id, tracking_number, tracking_valid,
        shipped_on, status, updated_at)
    SELECT g.shipment_id, %(m)s, r.donation_id, g.gift_item_id, g.grp,
        COALESCE(NULLIF(g.ship_to_name, ''), r.name),
        COALESCE(NULLIF(g.ship_to_kana, ''), r.kana),
        COALESCE(NULLIF(g.ship_to_postal_code, ''), r.postal_code),
        COALESCE(NULLIF(g.ship_to_address, ''),
            r.prefecture || r.address || CASE WHEN r.building <> '' THEN ' ' || r.building ELSE '' END),
        COALESCE(NULLIF(g.ship_to_phone, ''), r.phone),
        g.desired_date, COALESCE(g.desired_time_slot, ''), g.carrier_id,
        COALESCE(g.tracking_number, ''), g.tracking_valid, g.shipped_on,
        CASE WHEN g.shipped_on IS NOT NULL THEN 'shipped' ELSE 'pending' END, now()
    FROM imp_gift g JOIN imp_row r ON r.line = g.line WHERE g.new_shipment;
UPDATE imp_row r SET changed = true
    FROM (SELECT DISTINCT line FROM imp_gift WHERE new_shipment) x
    WHERE x.line = r.line AND NOT r.changed AND NOT r.new_donation;
WITH changed AS (
    UPDATE {shipment} s SET {sets}, updated_at = now()
    FROM imp_gift g
    WHERE s.id = g.shipment_id AND NOT g.new_shipment
    AND ({old}) IS DISTINCT FROM ({new})
    RETURNING g.line
)
UPDATE imp_row r SET changed = true FROM (SELECT DISTINCT line FROM changed) x
    WHERE x.line = r.line AND NOT r.changed
"""

_SQL_FINISH = """
INSERT INTO {callback} (municipality_id, donor_id, donation_id, run_id, reasons, created_at,
        outcome)
    SELECT %(m)s, r.donor_id, r.donation_id, %(run)s, to_jsonb(r.callback), now(), ''
    FROM imp_row r
    WHERE r.reject IS NULL AND cardinality(r.callback) > 0
    AND NOT EXISTS (SELECT 1 FROM {callback} c WHERE c.donation_id = r.donation_id)
    ON CONFLICT DO NOTHING;
INSERT INTO {imported_row} (municipality_id, fingerprint, key, run_id)
    SELECT %(m)s, fingerprint, key, %(run)s FROM imp_row WHERE reject IS NULL
    ON CONFLICT (municipality_id, fingerprint) DO NOTHING;
INSERT INTO {rejection} (run_id, line, "column", reason, raw)
    SELECT %(run)s, line, left(COALESCE(reject_column, ''), 100), left(reject, 300), '[]'::jsonb
    FROM imp_row WHERE reject IS NOT NULL
""".format(**T)  # noqa: S608 - table names come from the models; values are bound


__all__ = ["BATCH_ROWS", "Importer", "carrier_lookup", "is_resident_address"]
