"""Import runs applied to the mirror: files generated as the sources write them, imported through
the services the upload page and the command use, read back through the console's lookups."""

from __future__ import annotations

import datetime as dt

import pytest

from crm import selectors as crm_selectors
from crm.models import Donor, DonorEmail, DonorPhone
from donations_sync import selectors as sync_selectors
from donations_sync import services
from donations_sync.models import (
    Donation,
    DonorCallback,
    GiftItem,
    ImportedRow,
    ImportRejection,
    ImportRun,
    Shipment,
)
from donations_sync.signals import import_run_progressed
from tests.donations_sync.test_import_parsing import (
    CHOICE_HEADER,
    F360_HEADER,
    INVALID_TRACKING,
    RAKUTEN_HEADER,
    VALID_TRACKING,
    csv_bytes,
    f360_row,
    rakuten_row,
)
from tests.donations_sync.test_import_parsing import (
    choice_row as parsing_choice_row,
)
from tests.factories import CarrierFactory, MunicipalityFactory
from tickets import services as ticket_services

# 23456789012 mod 7 = 3 → a second valid ヤマト number.
SECOND_TRACKING = "234567890123"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def carriers(db):
    return {
        "yamato": CarrierFactory(code="yamato", name="ヤマト運輸", short_name="ヤマト"),
        "sagawa": CarrierFactory(code="sagawa", name="佐川急便", short_name="佐川"),
        "yupack": CarrierFactory(
            code="yupack", name="日本郵便 ゆうパック", short_name="ゆうパック"
        ),
    }


def run_import(municipality, style: str, data: bytes, **kwargs) -> ImportRun:
    run = services.import_run_create(
        municipality=municipality,
        style=style,
        file=data,
        original_name=f"{style}.csv",
        queue=False,
        **kwargs,
    )
    return services.import_run_execute(run_id=run.pk)


def counts(run: ImportRun) -> tuple[int, int, int, int]:
    return (run.imported, run.updated, run.unchanged, run.rejected)


# The export with its tracking-number columns (the preset maps 返礼品n_伝票番号).
HEADER = []
for _name in CHOICE_HEADER:
    HEADER.append(_name)
    if _name.endswith("_運送業者"):
        HEADER.append(_name.replace("運送業者", "伝票番号"))


def choice_row(number: str, **overrides: str) -> list[str]:
    row = dict(zip(CHOICE_HEADER, parsing_choice_row(number), strict=True))
    row.update(overrides)
    assert set(row) <= set(HEADER), set(row) - set(HEADER)
    return [row.get(name, "") for name in HEADER]


def choice_file(rows) -> bytes:
    return csv_bytes(HEADER, rows, "cp932")


# --- ふるさとチョイス style ------------------------------------------------------------------


def test_choice_file_imports_then_reimports_unchanged(city_a, carriers) -> None:
    rows = [
        choice_row("D001", 備考="不在時は\n宅配ボックスへ, よろしく"),
        choice_row(
            "D002",
            氏名="佐藤 花子",
            フリガナ="ｻﾄｳ ﾊﾅｺ",
            電話番号="011-222-3333",
            **{
                "返礼品1_伝票番号": "",
                "返礼品2_コード": "OTR-002",
                "返礼品2_名称": "鮭の親子漬け",
                "返礼品2_発送日": "2024/1/15",
                "返礼品2_運送業者": "クロネコヤマト",
            },
        ),
        choice_row("D003", 申込日="2024/13/05"),  # no such month
        choice_row("D004", 寄附金額=""),  # a required value missing
        choice_row("D002"),  # the same number again
    ]
    data = choice_file(rows)
    run = run_import(city_a, "choice", data)

    assert run.status == ImportRun.Status.DONE, run.error
    assert run.detected_encoding == "cp932"
    assert run.unknown_columns == ["システム予備欄"]
    assert counts(run) == (2, 0, 0, 3)
    assert run.rows_read == 5
    assert run.size == len(data) and len(run.sha256) == 64
    with run.raw_file.open("rb") as stored:
        assert stored.read() == data

    rejections = {r.line: r for r in ImportRejection.objects.filter(run=run)}
    assert set(rejections) == {5, 6, 7}
    assert rejections[5].column == "申込日" and "存在しない日付" in rejections[5].reason
    assert rejections[6].column == "寄附金額" and "寄附金額がありません" in rejections[6].reason
    assert "4行目と同じ番号" in rejections[7].reason
    assert rejections[7].raw[0] == "D002"  # the raw cells, for the download

    donor = Donor.objects.get(municipality=city_a, donor_number="D001")
    assert donor.name == "髙橋 﨑子" and donor.name_kana == "タカハシサキコ"
    assert donor.postal_code == "0470032" and donor.is_resident  # 北海道小樽市…
    donation = Donation.objects.get(municipality=city_a, external_id="EX-D001")
    assert donation.donor == donor and donation.amount == 10000
    assert donation.paid_on == dt.date(2024, 1, 6) and donation.status == "paid"
    assert donation.note == "不在時は\n宅配ボックスへ, よろしく"
    assert donation.one_stop_requested and donation.one_stop_received_on == dt.date(2024, 1, 25)
    [shipment] = donation.shipments.all()
    assert shipment.gift_item.code == "OTR-001" and shipment.gift_item.name == "いくら醤油漬け①"
    assert shipment.carrier == carriers["yamato"]
    assert shipment.shipped_on == dt.date(2024, 1, 12) and shipment.status == "shipped"
    assert shipment.ship_to_phone == "+81134221234"
    two = Donation.objects.get(external_id="EX-D002").shipments.order_by("delivery_number")
    assert [(s.gift_item.code, s.delivery_number) for s in two] == [("OTR-001", 1), ("OTR-002", 2)]
    assert two[1].carrier == carriers["yamato"]  # クロネコヤマト
    assert GiftItem.objects.filter(municipality=city_a).count() == 2

    # Again: rows applied before are known by their fingerprint and not parsed; they still
    # hold their numbers, so the repeated D002 is rejected again, as are the bad rows.
    assert ImportedRow.objects.filter(municipality=city_a).count() == 2
    written = [
        list(model.objects.order_by("pk").values_list("pk", "updated_at"))
        for model in (Donor, Donation, Shipment)
    ]
    again = run_import(city_a, "choice", data)
    assert counts(again) == (0, 0, 2, 3)
    assert written == [  # nothing written
        list(model.objects.order_by("pk").values_list("pk", "updated_at"))
        for model in (Donor, Donation, Shipment)
    ]
    assert "4行目と同じ番号" in ImportRejection.objects.get(run=again, line=7).reason
    assert Donation.objects.filter(municipality=city_a).count() == 2
    assert Shipment.objects.filter(municipality=city_a).count() == 3
    # Each known row's number is kept with its fingerprint; rows recorded before it was kept
    # ('') have it read from the row, with the same outcome.
    assert set(ImportedRow.objects.values_list("key", flat=True)) == {"x:EX-D001", "x:EX-D002"}
    ImportedRow.objects.update(key="")
    third = run_import(city_a, "choice", data)
    assert counts(third) == (0, 0, 2, 3)
    assert "4行目と同じ番号" in ImportRejection.objects.get(run=third, line=7).reason


def test_later_export_updates_in_place_and_keeps_ticket_links(city_a, carriers) -> None:
    first = [choice_row("D010", 入金日="", **{"返礼品1_発送日": ""})]
    run_import(city_a, "choice", choice_file(first))
    donation = Donation.objects.get(external_id="EX-D010")
    shipment = donation.shipments.get()
    assert donation.status == "applied" and shipment.status == "pending"
    ticket = ticket_services.inquiry_open(
        actor=None,
        municipality=city_a,
        channel="phone",
        title="発送はいつですか",
        description="",
        donor=donation.donor,
        donations=[donation],
        shipments=[shipment],
    )

    later = [
        choice_row(
            "D010",
            入金日="2024/1/8",
            寄附受領証明書出力日="令和6年2月1日",
            **{"返礼品1_発送日": "2024/1/20", "返礼品1_伝票番号": VALID_TRACKING},
        )
    ]
    run = run_import(city_a, "choice", choice_file(later))
    assert counts(run) == (0, 1, 0, 0)
    donation.refresh_from_db()
    shipment.refresh_from_db()
    assert donation.paid_on == dt.date(2024, 1, 8) and donation.status == "paid"
    assert donation.receipt_issued_on == dt.date(2024, 2, 1)
    assert shipment.shipped_on == dt.date(2024, 1, 20) and shipment.status == "shipped"
    assert shipment.tracking_number == VALID_TRACKING and shipment.tracking_valid is True
    assert list(ticket.donations.all()) == [donation]
    assert list(ticket.shipments.all()) == [shipment]
    assert ticket.donor_id == donation.donor_id

    # The tracking search the console uses finds the imported shipment.
    assert sync_selectors.shipment_ids_by_tracking_number([city_a.pk], "1234-5678-9013") == [
        shipment.pk
    ]
    # A blank cell in a yet later export does not erase what is known.
    assert counts(run_import(city_a, "choice", choice_file(first))) == (0, 0, 1, 0)
    shipment.refresh_from_db()
    assert shipment.tracking_number == VALID_TRACKING


def test_invalid_tracking_number_is_kept_and_flagged(city_a, carriers) -> None:
    rows = [choice_row("D020", **{"返礼品1_伝票番号": INVALID_TRACKING})]
    run = run_import(city_a, "choice", choice_file(rows))
    assert counts(run) == (1, 0, 0, 0)
    shipment = Shipment.objects.get(donation__external_id="EX-D020")
    assert shipment.tracking_number == INVALID_TRACKING and shipment.tracking_valid is False


def test_tracking_number_of_another_shipment_rejects_the_row(city_a, carriers) -> None:
    rows = [
        choice_row("D030", **{"返礼品1_伝票番号": VALID_TRACKING}),
        choice_row("D031", **{"返礼品1_伝票番号": VALID_TRACKING}),
    ]
    run = run_import(city_a, "choice", choice_file(rows))
    assert counts(run) == (1, 0, 0, 1)
    rejection = ImportRejection.objects.get(run=run)
    assert rejection.line == 3 and rejection.column == "返礼品1_伝票番号"
    assert not Donation.objects.filter(external_id="EX-D031").exists()  # nothing half-applied


# --- donors ---------------------------------------------------------------------------------


def test_donor_matching_by_number_and_by_phone_and_kana(city_a, carriers) -> None:
    run_import(city_a, "choice", choice_file([choice_row("D100")]))
    # The same donor number in a later file with a new address: one donor, updated.
    run = run_import(
        city_a,
        "choice",
        choice_file([choice_row("D100", 外部管理番号="EX-D100-2", 市区町村="札幌市")]),
    )
    assert counts(run) == (1, 0, 0, 0)
    donor = Donor.objects.get(donor_number="D100")
    assert donor.donations.count() == 2 and not donor.is_resident

    # Furusato360 has no donor number: 山﨑 太郎 is found again by phone and reading.
    first = run_import(city_a, "furusato360", csv_bytes(F360_HEADER, [f360_row("F-1")], "utf-8"))
    assert counts(first) == (1, 0, 0, 0)
    second = run_import(
        city_a,
        "furusato360",
        csv_bytes(F360_HEADER, [f360_row("F-2", 電話番号="０３（１２３４）５６７８")], "utf-8"),
    )
    assert counts(second) == (1, 0, 0, 0)
    taro = Donor.objects.get(municipality=city_a, name="山﨑 太郎")
    assert taro.donations.count() == 2
    assert taro.name_kana == "ヤマザキタロウ"
    assert list(taro.phones.values_list("e164", flat=True)) == ["+81312345678"]
    assert list(taro.emails.values_list("address", flat=True)) == ["taro@example.jp"]


def test_never_across_municipalities(city_a, city_b, carriers) -> None:
    data = choice_file([choice_row("D200")])
    run_import(city_a, "choice", data)
    run_import(city_b, "choice", data)
    assert Donor.objects.filter(donor_number="D200").count() == 2
    assert Donation.objects.filter(external_id="EX-D200").count() == 2
    # Resident of 小樽市 (city A) only.
    assert Donor.objects.get(municipality=city_a).is_resident
    assert not Donor.objects.get(municipality=city_b).is_resident


def test_caller_id_lookup_finds_an_imported_donor(city_a, carriers) -> None:
    run_import(city_a, "choice", choice_file([choice_row("D300")]))
    donor = Donor.objects.get(donor_number="D300")
    assert DonorPhone.objects.filter(donor=donor, municipality=city_a).exists()
    assert DonorEmail.objects.filter(donor=donor, address="sakiko@example.jp").exists()
    # As Twilio sends the caller ID, and as an agent types it.
    assert sync_selectors.donor_ids_by_phone([city_a.pk], "+819012345678") == [donor.pk]
    assert sync_selectors.donor_ids_by_phone([city_a.pk], "090-1234-5678") == [donor.pk]
    # The console's reading search (ﾀｶﾊｼ ｻｷｺ was imported in half-width kana).
    assert crm_selectors.donor_ids_by_kana_prefix([city_a.pk], "たかはし") == [donor.pk]
    assert crm_selectors.donor_ids_by_email([city_a.pk], "SAKIKO@example.jp") == [donor.pk]


def test_incomplete_donor_goes_on_the_callback_list_once(city_a, carriers) -> None:
    rows = [
        choice_row(
            "D400",
            **{"電話番号": "", "〒": "", "都道府県": "", "市区町村": "", "町名・番地": ""},
        )
    ]
    data = choice_file(rows)
    run = run_import(city_a, "choice", data)
    assert run.needs_callback == 1
    callback = DonorCallback.objects.get(municipality=city_a)
    assert callback.donation.external_id == "EX-D400" and callback.run == run
    assert callback.reasons == ["電話番号も住所もありません"]
    run_import(city_a, "choice", data)
    assert DonorCallback.objects.filter(municipality=city_a).count() == 1


# --- Furusato360 and 楽天 ---------------------------------------------------------------------


def test_furusato360_utf8_bom(city_a, carriers) -> None:
    data = b"\xef\xbb\xbf" + csv_bytes(
        F360_HEADER, [f360_row("F-10"), f360_row("F-11", **{"お礼の品_1": "コードなし"})], "utf-8"
    )
    run = run_import(city_a, "furusato360", data)
    assert run.detected_encoding == "utf-8-sig"
    assert counts(run) == (1, 0, 0, 1)
    donation = Donation.objects.get(external_id="F-10")
    assert donation.portal == "direct" and donation.amount == 30000
    assert [s.gift_item.code for s in donation.shipments.order_by("delivery_number")] == [
        "HK-0101",
        "HK-0202",
    ]
    assert counts(run_import(city_a, "furusato360", data)) == (0, 0, 1, 1)


def test_rakuten_cp932_orders(city_a, carriers) -> None:
    rows = [
        rakuten_row("123456-20240101-00111801"),
        rakuten_row(
            "123456-20240101-00111802", お荷物伝票番号=SECOND_TRACKING, 配送会社="佐川急便"
        ),
        rakuten_row("20240101-1"),
    ]
    run = run_import(city_a, "rakuten", csv_bytes(RAKUTEN_HEADER, rows, "cp932"))
    assert counts(run) == (2, 0, 0, 1)
    assert run.unknown_columns == ["ポイント利用額"]
    donation = Donation.objects.get(
        portal="rakuten", portal_order_number="123456-20240101-00111801"
    )
    shipment = donation.shipments.get()
    assert shipment.tracking_number == VALID_TRACKING and shipment.carrier == carriers["yamato"]
    sagawa = Shipment.objects.get(tracking_number=SECOND_TRACKING)
    assert sagawa.carrier == carriers["sagawa"]
    # The order number a donor quotes finds the donation.
    assert sync_selectors.donation_ids_by_number([city_a.pk], "123456-20240101-00111801") == [
        donation.pk
    ]
    # Both orders are the same donor (no number; same phone and reading).
    assert Donor.objects.filter(municipality=city_a).count() == 1


# --- the run as a whole ---------------------------------------------------------------------


def test_file_error_fails_the_run_and_a_rerun_with_a_fixed_mapping_works(city_a, carriers) -> None:
    header = ["金額" if name == "寄附金額" else name for name in HEADER]
    data = csv_bytes(header, [choice_row("D500")], "cp932")
    run = run_import(city_a, "choice", data)
    assert run.status == ImportRun.Status.FAILED
    assert "必須の列がありません" in run.error and "寄附金額" in run.error

    mapping = {**run.mapping, "donation": {**run.mapping["donation"], "amount": "金額"}}
    rerun = services.import_run_rerun(run=run, created_by=None, mapping=mapping)
    assert rerun.rerun_of == run and rerun.raw_file.name == run.raw_file.name
    rerun = services.import_run_execute(run_id=rerun.pk)
    assert rerun.status == ImportRun.Status.DONE and counts(rerun) == (1, 0, 0, 0)


def test_progress_signal_and_a_second_delivery_runs_nothing(city_a, carriers) -> None:
    seen: list[int] = []

    def receiver(run_id, **kwargs):
        seen.append(run_id)

    import_run_progressed.connect(receiver, sender=ImportRun)
    try:
        run = run_import(city_a, "choice", choice_file([choice_row("D600")]))
    finally:
        import_run_progressed.disconnect(receiver, sender=ImportRun)
    assert seen and set(seen) == {run.pk}
    # Redelivered message: the run is done, nothing runs again.
    assert services.import_run_execute(run_id=run.pk).imported == 1


def test_a_run_whose_worker_died_resumes_after_its_last_batch(
    city_a, carriers, monkeypatch
) -> None:
    from donations_sync import import_apply  # noqa: PLC0415

    monkeypatch.setattr(import_apply, "BATCH_ROWS", 2)
    rows = [choice_row(f"D7{i:02d}") for i in range(5)]
    data = choice_file(rows)
    run = services.import_run_create(
        municipality=city_a, style="choice", file=data, original_name="x.csv", queue=False
    )
    # A worker that committed the first batch (lines 2-3) and died.
    first = services.import_run_create(
        municipality=city_a,
        style="choice",
        file=choice_file(rows[:2]),
        original_name="y.csv",
        queue=False,
    )
    services.import_run_execute(run_id=first.pk)
    ImportRun.objects.filter(pk=run.pk).update(
        status=ImportRun.Status.RUNNING,
        heartbeat_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        resume_line=3,
        imported=2,
        rows_read=2,
    )
    assert services.import_runs_due() == [run.pk]
    run = services.import_run_execute(run_id=run.pk)
    assert run.status == ImportRun.Status.DONE
    assert counts(run) == (5, 0, 0, 0) and run.rows_read == 5
    assert Donation.objects.filter(municipality=city_a).count() == 5


@pytest.fixture
def eager_celery():
    from config.celery import app  # noqa: PLC0415

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


def test_queued_run_is_executed_by_the_worker_after_commit(
    city_a, carriers, django_capture_on_commit_callbacks, eager_celery
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        run = services.import_run_create(
            municipality=city_a,
            style="choice",
            file=choice_file([choice_row("D800")]),
            original_name="x.csv",
        )
    run.refresh_from_db()
    assert run.status == ImportRun.Status.DONE and run.imported == 1


def test_unknown_municipality_stays_apart(db, carriers) -> None:
    other = MunicipalityFactory(code="011002", name="札幌市", prefecture="北海道")
    run = run_import(other, "choice", choice_file([choice_row("D900", 市区町村="札幌市")]))
    assert Donor.objects.get(municipality=other).is_resident
    assert run.imported == 1


def threads_running(monkeypatch, cls: type, name: str) -> set[str]:
    """The names of the threads that will run ``cls.name``."""
    import threading  # noqa: PLC0415

    names: set[str] = set()
    real = getattr(cls, name)

    def recorded(self, *args, **kwargs):
        names.add(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, recorded)
    return names


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_outside_a_transaction_batches_apply_on_a_second_connection(
    city_a, carriers, monkeypatch
) -> None:
    """As a worker runs it: committed batches, applied by the statement thread."""
    from donations_sync import import_apply  # noqa: PLC0415

    monkeypatch.setattr(import_apply, "BATCH_ROWS", 3)
    threads = threads_running(monkeypatch, import_apply.Importer, "_batch")
    progress: list[int] = []
    rows = [choice_row(f"T{i:03d}") for i in range(7)] + [choice_row("T000", 入金日="2024/1/7")]
    run = services.import_run_create(
        municipality=city_a,
        style="choice",
        file=choice_file(rows),
        original_name="t.csv",
        queue=False,
    )
    run = services.import_run_execute(
        run_id=run.pk, progress=lambda r: progress.append(r.rows_read)
    )
    assert threads == {"import-apply"}
    assert run.status == ImportRun.Status.DONE
    assert counts(run) == (7, 0, 0, 1) and progress[:3] == [3, 6, 8]
    assert ImportRejection.objects.get(run=run).raw[0] == "T000"
    assert Donation.objects.filter(municipality=city_a).count() == 7

    # The same file again: each batch's fingerprints are looked up on a thread of their own
    # while the next batch is read; the known rows' numbers still make the repeat a duplicate.
    looked_up_on = threads_running(monkeypatch, import_apply.Importer, "_known")
    again = services.import_run_create(
        municipality=city_a,
        style="choice",
        file=choice_file(rows),
        original_name="t.csv",
        queue=False,
    )
    again = services.import_run_execute(run_id=again.pk)
    assert looked_up_on == {"import-known_0"}
    assert counts(again) == (0, 0, 7, 1)
    assert ImportRejection.objects.get(run=again).reason.startswith("2行目と同じ番号の寄附です")


def test_a_run_refreshes_the_planner_statistics_as_it_grows_the_mirror(
    city_a, carriers, monkeypatch
) -> None:
    """After 2 written rows, again each time they double, and at the end; not when a run
    wrote nothing."""
    from django.db import connection  # noqa: PLC0415
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    from donations_sync import import_apply  # noqa: PLC0415

    monkeypatch.setattr(import_apply, "BATCH_ROWS", 2)
    monkeypatch.setattr(import_apply, "ANALYZE_FIRST_AT", 2)
    data = choice_file([choice_row(f"S{i:02d}") for i in range(7)])

    def analyzed(run_data: bytes) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            run = run_import(city_a, "choice", run_data)
        assert run.status == ImportRun.Status.DONE
        return [
            q["sql"] for q in queries.captured_queries if q["sql"].startswith("ANALYZE crm_donor")
        ]

    first = analyzed(data)
    # Batches write 2, 4, 6, 7 rows: at 2 and 4 (then waits for 8), and at the end.
    assert len(first) == 3
    assert "donations_sync_shipment" in first[0] and "donations_sync_importedrow" in first[0]
    assert analyzed(data) == []  # all unchanged


def test_the_sweep_runs_a_queued_run_no_worker_took(city_a, carriers, eager_celery) -> None:
    from django.conf import settings  # noqa: PLC0415

    from donations_sync import tasks  # noqa: PLC0415

    entry = settings.CELERY_BEAT_SCHEDULE["import-runs-sweep"]
    assert entry["task"] == tasks.import_runs_sweep.name
    # Recorded, but its message was lost (broker down at the commit).
    run = services.import_run_create(
        municipality=city_a,
        style="choice",
        file=choice_file([choice_row("S001")]),
        original_name="s.csv",
        queue=False,
    )
    assert tasks.import_runs_sweep.apply().get() == 0  # too recent: its message may be coming
    ImportRun.objects.filter(pk=run.pk).update(created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    assert tasks.import_runs_sweep.apply().get() == 1
    run.refresh_from_db()
    assert run.status == ImportRun.Status.DONE and run.imported == 1
    assert tasks.import_runs_sweep.apply().get() == 0


def test_a_run_that_fails_midway_is_recorded_and_can_be_rerun(
    city_a, carriers, monkeypatch
) -> None:
    from donations_sync import import_apply  # noqa: PLC0415

    monkeypatch.setattr(import_apply, "BATCH_ROWS", 2)
    real_apply = import_apply.Importer._apply
    calls = []

    def failing_apply(self, cursor):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("connection lost")
        return real_apply(self, cursor)

    monkeypatch.setattr(import_apply.Importer, "_apply", failing_apply)
    data = choice_file([choice_row(f"F{i:02d}") for i in range(5)])
    run = run_import(city_a, "choice", data)
    assert run.status == ImportRun.Status.FAILED
    assert "取込中にエラーが発生しました" in run.error
    assert run.imported == 2 and run.resume_line == 3  # the first batch stands

    rerun = services.import_run_rerun(run=run, created_by=None)
    rerun = services.import_run_execute(run_id=rerun.pk)
    assert rerun.status == ImportRun.Status.DONE
    assert counts(rerun) == (3, 0, 2, 0)
    assert Donation.objects.filter(municipality=city_a).count() == 5


def test_only_a_supervisor_of_the_municipality_may_import(
    city_a, city_b, agent_a, supervisor
) -> None:
    from django.core.exceptions import PermissionDenied  # noqa: PLC0415

    from crm.models import User  # noqa: PLC0415
    from tests.factories import UserFactory  # noqa: PLC0415

    supervisor_b = UserFactory(
        username="supervisor_b", role=User.Role.SUPERVISOR, municipalities=[city_b]
    )
    data = choice_file([choice_row("P001")])
    for user in (agent_a, supervisor_b):
        with pytest.raises(PermissionDenied):
            services.import_run_create(
                municipality=city_a,
                style="choice",
                file=data,
                original_name="p.csv",
                created_by=user,
                queue=False,
            )
    assert not ImportRun.objects.exists()
    run = services.import_run_create(
        municipality=city_a,
        style="choice",
        file=data,
        original_name="p.csv",
        created_by=supervisor,
        queue=False,
    )
    assert run.created_by == supervisor
