"""Hand-over through the management commands: the export reads back and counts match the
database; the deletion leaves nothing of the city in any table, file or Redis key, while the
other city is untouched; the certificate names the counts."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from django.apps import apps
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection
from pypdf import PdfReader

from administration.handover import deletion, registry
from administration.handover.models import HandoverDeletion, HandoverExport
from crm.models import AuditLog, Municipality, User
from tests.administration.handover_data import ODD_NAME, RAW_MAIL, fill_city
from tests.processes import database_url

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture(autouse=True)
def _dirs(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.HANDOVER_ROOT = tmp_path / "handover"


@pytest.fixture
def two_cities(city_a, city_b):
    return fill_city(city_a, tag="a"), fill_city(city_b, tag="b", rich=False)


def _counts(municipality_id: int) -> dict[str, int]:
    root_ids = {m._meta.label: fn(municipality_id) for m, fn in registry.roots().items()}
    return {
        t.label: t.model._base_manager.filter(**t.filter_kwargs(municipality_id, root_ids)).count()
        for t in registry.owned_tables()
    }


def _export(city) -> tuple[HandoverExport, zipfile.ZipFile]:
    call_command("export_municipality", city.code, stdout=io.StringIO())
    export = HandoverExport.objects.get(municipality=city)
    from django.conf import settings

    return export, zipfile.ZipFile(Path(settings.HANDOVER_ROOT) / export.file_name)


def test_export_round_trips(two_cities, city_a, city_b):
    expected = _counts(city_a.pk)
    export, zf = _export(city_a)
    assert export.status == "done"
    names = set(zf.namelist())
    manifest = json.loads(zf.read("manifest.json"))
    by_model = {t["model"]: t for t in manifest["tables"]}
    # Every owned table is there, with as many rows in each of the three forms as in the database.
    for label, count in expected.items():
        table = by_model[label]
        assert table["rows"] == count, label
        name = table["name"]
        utf8 = list(csv.reader(io.StringIO(zf.read(f"csv/utf-8/{name}.csv").decode("utf-8"))))
        cp932 = list(csv.reader(io.StringIO(zf.read(f"csv/cp932/{name}.csv").decode("cp932"))))
        jsonl = zf.read(f"jsonl/{name}.jsonl").decode("utf-8").splitlines()
        assert len(utf8) - 1 == len(cp932) - 1 == len(jsonl) == count, label
    assert expected["crm.Donor"] == 1 and expected["helpdesk.Ticket"] == 1
    assert expected["helpdesk.FollowUpAttachment"] == 1
    # The other city's rows are not in it.
    donors = [json.loads(line) for line in zf.read("jsonl/crm_donor.jsonl").splitlines()]
    assert {d["municipality_id"] for d in donors} == {city_a.pk}
    assert donors[0]["name"] == ODD_NAME
    # CP932: 〜 became its twin, the old-form kanji became 〓 and are listed.
    cp932_donors = zf.read("csv/cp932/crm_donor.csv").decode("cp932")
    assert "〓田 〓外" in cp932_donors and "1～2" in cp932_donors
    subs = zf.read("cp932_substitutions.csv").decode("utf-8")
    assert ODD_NAME in subs and "U+20BB7" in subs and "U+9DD7" in subs
    # Files: raw mail as .eml, the mail attachment, the helpdesk attachment and the import file.
    messages = [
        json.loads(x) for x in zf.read("jsonl/ticketmail_inboundmessage.jsonl").splitlines()
    ]
    assert zf.read(messages[0]["raw"]) == RAW_MAIL and messages[0]["raw"].endswith(".eml")
    assert any(n.startswith("files/helpdesk_followupattachment/file/") for n in names)
    assert any(n.startswith("files/donations_sync_importrun/raw_file/") for n in names)
    calls = [json.loads(x) for x in zf.read("jsonl/telephony_call.jsonl").splitlines()]
    assert calls[0]["recording_sid"] == "REa" and calls[0]["recording_seconds"] == 42
    # Carriers used, and the staff named, come along; secrets never do.
    carriers = zf.read("csv/utf-8/crm_carrier.csv").decode()
    assert "carrier-a" in carriers and "carrier-b" not in carriers
    assert "password" not in zf.read("csv/utf-8/crm_user.csv").decode().splitlines()[0]
    mailbox_csv = zf.read("csv/utf-8/ticketmail_mailbox.csv").decode()
    assert "password" not in mailbox_csv and "secret-pw" not in mailbox_csv
    # The checksums hold for every file, and list every file.
    sums = dict(
        reversed(line.split("  ", 1)) for line in zf.read("SHA256SUMS").decode().splitlines()
    )
    assert set(sums) == names - {"SHA256SUMS"}
    for name, digest in sums.items():
        assert hashlib.sha256(zf.read(name)).hexdigest() == digest, name
    readme = zf.read("README.md").decode()
    assert "寄附者" in readme and "`crm_donor`" in readme and "〓" in readme
    from django.conf import settings

    path = Path(settings.HANDOVER_ROOT) / export.file_name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == export.sha256


def _redis_keys(city_id: int, mailbox_ids: list[int]) -> list[bytes]:
    return deletion.redis_keys(city_id, mailbox_ids)


def _ticket_keys(ticket_ids: list[int]) -> list[bytes]:
    client = deletion._redis()
    if client is None:
        return []
    return [k for pk in ticket_ids for k in client.scan_iter(match=f"*ticket.{pk}.*")]


def test_deletion_refused_without_export_or_confirmation(two_cities, city_a):
    with pytest.raises(CommandError, match="出力が完了していません"):
        call_command("delete_municipality", city_a.code, confirm=city_a.code)
    _export(city_a)
    with pytest.raises(CommandError, match="一致しません"):
        call_command("delete_municipality", city_a.code, confirm="000000")
    assert Municipality.objects.filter(pk=city_a.pk).exists()
    assert not HandoverDeletion.objects.exists()


def test_deletion_leaves_nothing_of_the_city(two_cities, city_a, city_b, settings):
    data_a, data_b = two_cities
    before_b = _counts(city_b.pk)
    media = Path(settings.MEDIA_ROOT)
    assert (media / data_a["attachment_file"]).exists() and (media / data_a["import_file"]).exists()
    from tickets.handover import municipality_ticket_ids

    a_id = city_a.pk
    a_tickets = municipality_ticket_ids(municipality_id=a_id)
    a_queue = _queue_ids(a_id)
    mailboxes = [data_a["mailbox"]]
    if settings.REDIS_URL:
        keys = {k.decode() for k in _redis_keys(a_id, mailboxes)}
        assert any("mail:poll" in k for k in keys) and any("municipality." in k for k in keys)
        assert _ticket_keys(a_tickets)
    export, _ = _export(city_a)
    # What an export killed midway leaves: its temporary directory and partial zip.
    exports_dir = Path(settings.HANDOVER_ROOT) / "exports"
    leftover = exports_dir / f"{city_a.code}-99-20260101-000000-tmp-x1"
    leftover.mkdir()
    (leftover / "crm_donor.utf8.csv").write_text("id,name")
    (exports_dir / f"{city_a.code}-99-20260101-000000.zip.partial").write_bytes(b"PK")
    kept = exports_dir / f"{city_b.code}-98-20260101-000000.zip.partial"
    kept.write_bytes(b"PK")
    out = io.StringIO()
    call_command(
        "delete_municipality", city_a.code, confirm=city_a.code, user="opadmin", stdout=out
    )
    run = HandoverDeletion.objects.get()
    assert run.status == "done" and run.verification["clean"] is True
    # Every owned table: zero rows of city A (counted through the same chains the export uses).
    assert not Municipality.objects.filter(pk=a_id).exists()
    root_ids = {"helpdesk.Queue": a_queue}
    for table in registry.owned_tables():
        assert not table.model._base_manager.filter(**table.filter_kwargs(a_id, root_ids)).exists()
    # helpdesk's tables, by the ticket ids city A had.
    for label in ("helpdesk.Ticket", "helpdesk.FollowUp", "helpdesk.FollowUpAttachment"):
        model = apps.get_model(label)
        field = (
            "pk"
            if label == "helpdesk.Ticket"
            else ("ticket_id" if label == "helpdesk.FollowUp" else "followup__ticket_id")
        )
        assert not model.objects.filter(**{f"{field}__in": a_tickets}).exists(), label
    # Raw SQL over every municipality_id column of the database.
    with connection.cursor() as cur:
        for table, column in deletion.municipality_id_columns():
            cur.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}" = %s', [a_id])  # noqa: S608
            assert cur.fetchone()[0] == 0, table
    # helpdesk's per-queue permission went with the queue (re-onboarding the code works).
    from django.contrib.auth.models import Permission

    assert not Permission.objects.filter(codename=f"queue_access_m{city_a.code}").exists()
    assert Permission.objects.filter(codename=f"queue_access_m{city_b.code}").exists()
    # Personal data in the audit tables: access rows gone, audit details anonymised.
    assert not AuditLog.objects.filter(detail__municipality_id=a_id).exists()
    assert AuditLog.objects.filter(detail__municipality_id=city_b.pk).exists()
    official = User.objects.get(pk=data_a["official"].pk)
    assert not official.is_active and official.username.startswith("deleted-")
    assert User.objects.get(pk=data_b["official"].pk).is_active
    # No files and no Redis keys of city A; city B keeps its own.
    assert not (media / data_a["attachment_file"]).exists()
    assert not (media / data_a["import_file"]).exists()
    assert not (Path(settings.HANDOVER_ROOT) / export.file_name).exists()
    assert not leftover.exists() and kept.exists()
    assert sorted(p.name for p in exports_dir.iterdir()) == [kept.name]
    assert default_storage.exists(data_b["attachment_file"])
    assert default_storage.exists(data_b["import_file"])
    assert _redis_keys(a_id, mailboxes) == []
    assert _ticket_keys(a_tickets) == []
    if settings.REDIS_URL:
        assert len(_redis_keys(city_b.pk, [data_b["mailbox"]])) == 2
        assert _ticket_keys(municipality_ticket_ids(municipality_id=city_b.pk))
    # City B: every table's count unchanged.
    assert _counts(city_b.pk) == before_b
    # The certificate: counts per table, the export's checksum.
    pdf = Path(settings.HANDOVER_ROOT) / run.certificate_name
    text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    flat = "".join(text.split())
    assert "削除証明書" in flat and export.sha256 in flat
    assert "crm.Donor" in text and "helpdesk.Ticket" in text
    assert str(run.rows_deleted) in text
    assert run.deleted_counts["crm.Donor"] == 1 and run.deleted_counts["crm.Municipality"] == 1


def _queue_ids(municipality_id: int) -> list[int]:
    return registry.roots()[apps.get_model("helpdesk.Queue")](municipality_id)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_deletion_resumes_after_the_process_is_killed(two_cities, city_a, city_b, settings):
    """A deletion process killed with SIGKILL mid-way leaves committed batches with exact
    counts; --resume finishes it and the counts add up to the plan."""
    _export(city_a)
    before_b = _counts(city_b.pk)
    run = HandoverDeletion.objects.create(
        municipality=city_a,
        municipality_code=city_a.code,
        municipality_name=city_a.name,
        export=HandoverExport.objects.get(municipality=city_a),
        requested_by_name="test",
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "HANDOVER_ROOT": str(settings.HANDOVER_ROOT),
        "HANDOVER_DELETE_BATCH": "1",
        "HANDOVER_DELETE_PAUSE_SECONDS": "0.05",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "delete_municipality", "--resume", str(run.pk)],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.rows_deleted >= 5:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run.refresh_from_db()
    assert run.status == "running" and 0 < run.rows_deleted < run.rows_planned
    assert Municipality.objects.filter(pk=city_a.pk).exists()
    # What was committed is exactly what is gone.
    remaining_now = sum(_counts(city_a.pk).values())
    assert remaining_now + run.rows_deleted == run.rows_planned

    call_command("delete_municipality", resume=run.pk, stdout=io.StringIO())
    run.refresh_from_db()
    assert run.status == "done" and run.rows_deleted == run.rows_planned
    assert run.deleted_counts == {k: v for k, v in run.plan["counts"].items() if v}
    assert _counts(city_b.pk) == before_b


def test_override_without_export_is_audited(two_cities, city_a):
    call_command(
        "delete_municipality",
        city_a.code,
        confirm=city_a.code,
        override_reason="市の指示（文書番号 123）",
        stdout=io.StringIO(),
    )
    run = HandoverDeletion.objects.get()
    assert run.export is None and run.status == "done"
    row = AuditLog.objects.get(action="handover_override")
    assert row.detail["reason"] == "市の指示（文書番号 123）"
