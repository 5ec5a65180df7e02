"""The import pages over HTTP: upload, the run page and its rejected-rows download, re-run,
column mappings, the 要確認 call-back list; and who may do what with whose imports."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from crm.models import PersonalDataAccess, User
from donations_sync.imports import PRESETS
from donations_sync.models import DonorCallback, ImportMapping, ImportRejection, ImportRun
from tests.conftest import response_bytes
from tests.factories import DonationFactory, DonorPhoneFactory, UserFactory

pytestmark = pytest.mark.django_db

HEADER = ["寄附者番号", "氏名", "フリガナ", "申込日", "寄附金額", "髙﨑①メモ"]
BAD_ROW = ["D-2", "髙﨑 花子", "ﾀｶｻｷ ﾊﾅｺ", "2024/13/45", "10000", "①"]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def supervisor_a(city_a):
    return UserFactory(username="sv_a", role=User.Role.SUPERVISOR, municipalities=[city_a])


@pytest.fixture
def supervisor_b(city_b):
    return UserFactory(username="sv_b", role=User.Role.SUPERVISOR, municipalities=[city_b])


def _cp932_file(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows([HEADER, *rows])
    return text.getvalue().encode("cp932")


@pytest.fixture
def finished_run(city_a, supervisor_a):
    """A CP932 run of city A that ended with one rejected row and one unknown column."""
    raw = _cp932_file([["D-1", "山田 太郎", "ﾔﾏﾀﾞ ﾀﾛｳ", "2024/1/5", "10000", ""], BAD_ROW])
    run = ImportRun.objects.create(
        municipality=city_a,
        style="choice",
        mapping=PRESETS["choice"],
        raw_file=ContentFile(raw, name="choice.csv"),
        original_name="寄附者一覧.csv",
        size=len(raw),
        detected_encoding="cp932",
        created_by=supervisor_a,
        status=ImportRun.Status.DONE,
        started_at=timezone.now() - timezone.timedelta(seconds=2),
        finished_at=timezone.now(),
        rows_read=2,
        imported=1,
        rejected=1,
        unknown_columns=["髙﨑①メモ"],
    )
    ImportRejection.objects.create(
        run=run, line=3, column="申込日", reason="日付として読めません（2024/13/45）", raw=BAD_ROW
    )
    return run


# --- Upload, execution, result, download and re-run through the engine ---------------------

EXPORT_HEADER = [
    "寄附者番号",
    "氏名",
    "フリガナ",
    "〒",
    "都道府県",
    "市区町村",
    "町名・番地",
    "電話番号",
    "受付番号",
    "申込日",
    "寄附金額",
    "寄附金の払込方法",
    "髙﨑メモ",
]
GOOD = ["D-1", "髙﨑 一郎", "ﾀｶｻｷ ｲﾁﾛｳ", "047-0032", "北海道", "小樽市", "稲穂1-2-3"]
GOOD += ["090-1234-5678", "C0001", "令和6年1月5日", "￥10,000", "クレジットカード", "①"]
BAD_DATE = ["D-2", "山田 花子", "ﾔﾏﾀﾞ ﾊﾅｺ", "0470032", "北海道", "小樽市", "花園1"]
BAD_DATE += ["0134-22-1111", "C0002", "2024/13/45", "5000", "", ""]
NO_CONTACT = ["D-3", "川口 次郎", "ｶﾜｸﾞﾁ ｼﾞﾛｳ", "", "", "", "", "", "C0003"]
NO_CONTACT += ["2024/1/6", "20000", "", ""]


def _export(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows([EXPORT_HEADER, *rows])
    return text.getvalue().encode("cp932")


def _upload(client, municipality, data: bytes, **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        "/imports/upload/",
        {
            "municipality": municipality.id,
            "style": "choice",
            "encoding": "",
            "file": SimpleUploadedFile("寄附者.csv", data, content_type="text/csv"),
            **fields,
        },
    )


def test_upload_runs_and_shows_the_result_and_rejected_rows(login, supervisor_a, city_a):
    from donations_sync.services import import_run_execute

    client = login(supervisor_a)
    response = _upload(client, city_a, _export([GOOD, BAD_DATE, NO_CONTACT]))
    run = ImportRun.objects.get(municipality=city_a)
    assert response.status_code == 302 and response["Location"] == f"/imports/runs/{run.id}/"
    assert run.status == ImportRun.Status.QUEUED and run.created_by == supervisor_a
    assert run.original_name == "寄附者.csv" and run.mapping == PRESETS["choice"]
    assert "待機中" in client.get(response["Location"]).content.decode()

    import_run_execute(run_id=run.id)
    run.refresh_from_db()
    assert (run.status, run.imported, run.rejected, run.needs_callback) == ("done", 2, 1, 1)
    body = client.get(f"/imports/runs/{run.id}/").content.decode()
    assert "完了" in body and "髙﨑メモ" in body and "2024/13/45" in body
    assert "CP932（Shift_JIS）" in body

    data = response_bytes(client.get(f"/imports/runs/{run.id}/rejections.csv"))
    rows = list(csv.reader(io.StringIO(data.decode("cp932"))))
    assert rows[0] == [*EXPORT_HEADER, "理由"]
    assert rows[1][:-1] == BAD_DATE and rows[1][-1].startswith("3行目・申込日：")
    assert len(rows) == 2

    callbacks = client.get("/callbacks/", {"m": city_a.id}).content.decode()
    assert "川口 次郎" in callbacks and "電話番号も住所もありません" in callbacks
    assert "髙﨑 一郎" not in callbacks


def test_upload_with_a_saved_mapping_and_encoding_then_rerun_after_fixing_it(
    login, supervisor_a, city_a
):
    from donations_sync.services import import_run_execute

    client = login(supervisor_a)
    mapping = ImportMapping.objects.create(
        municipality=city_a, style="choice", name="旧版", mapping=PRESETS["choice"]
    )
    # This export names the amount 寄附額: the saved mapping does not know it yet.
    header = ["寄附額" if c == "寄附金額" else c for c in EXPORT_HEADER]
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows([header, GOOD])
    response = _upload(
        client,
        city_a,
        text.getvalue().encode("cp932"),
        saved_mapping=mapping.id,
        encoding="cp932",
    )
    run = ImportRun.objects.get(municipality=city_a)
    assert run.saved_mapping == mapping and run.encoding == "cp932"
    import_run_execute(run_id=run.id)
    run.refresh_from_db()
    assert run.status == ImportRun.Status.FAILED and "寄附金額" in run.error
    body = client.get(f"/imports/runs/{run.id}/").content.decode()
    assert "ファイルを取り込めませんでした" in body and "寄附金額" in body

    form = _form_of(mapping)
    form["donation__amount"] = "寄附額"
    assert client.post(f"/imports/mappings/edit/{mapping.id}/", form).status_code == 302

    assert "旧版" in client.get(f"/imports/runs/{run.id}/rerun/").content.decode()
    response = client.post(
        f"/imports/runs/{run.id}/rerun/", {"saved_mapping": mapping.id, "encoding": ""}
    )
    rerun = ImportRun.objects.exclude(pk=run.pk).get()
    assert response["Location"] == f"/imports/runs/{rerun.id}/"
    assert rerun.rerun_of == run and rerun.mapping["donation"]["amount"] == "寄附額"
    assert rerun.raw_file.name == run.raw_file.name
    import_run_execute(run_id=rerun.id)
    rerun.refresh_from_db()
    assert (rerun.status, rerun.imported) == ("done", 1)
    assert "以前の取込" in client.get(f"/imports/runs/{rerun.id}/").content.decode()


def test_saved_mapping_of_another_style_is_refused_on_upload(login, supervisor_a, city_a):
    mapping = ImportMapping.objects.create(
        municipality=city_a, style="rakuten", name="楽天", mapping=PRESETS["rakuten"]
    )
    response = _upload(login(supervisor_a), city_a, _export([GOOD]), saved_mapping=mapping.id)
    assert response.status_code == 200
    assert "選んだ取込形式の対応表ではありません。" in response.content.decode()
    assert not ImportRun.objects.exists()


# --- Run page and download ----------------------------------------------------------------


def test_run_page_shows_counts_unknown_columns_and_rejected_rows(login, supervisor_a, finished_run):
    response = login(supervisor_a).get(f"/imports/runs/{finished_run.id}/")
    assert response.status_code == 200
    body = response.content.decode()
    for text in ("完了", "新規", "変更なし", "取込不可", "要確認", "髙﨑①メモ", "申込日"):
        assert text in body
    assert "日付として読めません（2024/13/45）" in body
    assert "取込不可行をダウンロード" in body
    assert PersonalDataAccess.objects.filter(
        record_type="import_rejections", record_id=str(finished_run.id)
    ).exists()


def test_rejected_rows_download_in_cp932_with_original_header(login, supervisor_a, finished_run):
    response = login(supervisor_a).get(f"/imports/runs/{finished_run.id}/rejections.csv")
    assert response.status_code == 200
    assert response.streaming
    assert "shift_jis" in response["Content-Type"]
    assert "attachment" in response["Content-Disposition"]
    data = response_bytes(response)
    rows = list(csv.reader(io.StringIO(data.decode("cp932"))))
    assert rows[0] == [*HEADER, "理由"]
    assert rows[1][:-1] == BAD_ROW
    assert "3行目" in rows[1][-1] and "申込日" in rows[1][-1] and "2024/13/45" in rows[1][-1]
    assert len(rows) == 2
    assert PersonalDataAccess.objects.filter(
        record_type="import_rejections.csv",
        action="export",
        municipality_id=finished_run.municipality_id,
    ).exists()


def test_download_of_a_row_with_undecodable_bytes_marks_them(login, supervisor_a, finished_run):
    finished_run.rejections.all().delete()
    ImportRejection.objects.create(
        run=finished_run,
        line=2,
        column="氏名",
        reason="cp932として読めない文字があります",
        raw=["D-1", "山\ufffd太郎", "", "2024/1/5", "10000", ""],
    )
    data = response_bytes(
        login(supervisor_a).get(f"/imports/runs/{finished_run.id}/rejections.csv")
    )
    rows = list(csv.reader(io.StringIO(data.decode("cp932"))))
    assert rows[1][1] == "山〓太郎"
    assert "〓" in rows[1][-1]


def test_utf8_download_keeps_the_originals_bom_choice(login, supervisor_a, finished_run):
    text = ",".join(HEADER) + "\r\n"
    finished_run.raw_file = ContentFile(text.encode("utf-8"), name="plain.csv")
    finished_run.detected_encoding = "utf-8-sig"
    finished_run.save()
    data = response_bytes(
        login(supervisor_a).get(f"/imports/runs/{finished_run.id}/rejections.csv")
    )
    assert not data.startswith(b"\xef\xbb\xbf")
    assert data.decode("utf-8").splitlines()[0].split(",") == [*HEADER, "理由"]


def test_rejected_rows_are_paged_by_line(login, supervisor_a, finished_run):
    ImportRejection.objects.bulk_create(
        ImportRejection(run=finished_run, line=n, reason=f"理由{n}", raw=[]) for n in range(4, 240)
    )
    client = login(supervisor_a)
    first = client.get(f"/imports/runs/{finished_run.id}/").content.decode()
    assert "理由4<" in first and "理由239<" not in first
    after = first.split("?after=")[1].split('"')[0]
    second = client.get(f"/imports/runs/{finished_run.id}/?after={after}").content.decode()
    assert "理由4<" not in second and "理由150<" in second


def test_failed_run_shows_the_file_level_error(login, supervisor_a, finished_run):
    finished_run.status = ImportRun.Status.FAILED
    finished_run.error = "必須の列がありません：寄附金額"
    finished_run.save()
    body = login(supervisor_a).get(f"/imports/runs/{finished_run.id}/").content.decode()
    assert "ファイルを取り込めませんでした" in body
    assert "必須の列がありません：寄附金額" in body


def test_running_run_reports_progress(login, supervisor_a, finished_run):
    finished_run.status = ImportRun.Status.RUNNING
    finished_run.finished_at = None
    finished_run.rows_read = 1
    finished_run.size, finished_run.bytes_read = 200, 100
    finished_run.imported = 1
    finished_run.save()
    client = login(supervisor_a)
    body = client.get(f"/imports/runs/{finished_run.id}/").content.decode()
    assert "import-run.js" in body and "取込中" in body and "ここまでの件数" in body
    progress = client.get(f"/imports/runs/{finished_run.id}/progress/").json()
    assert progress["status"] == "running" and progress["finished"] is False
    assert progress["rows_read"] == 1 and progress["imported"] == 1
    assert progress["estimated_rows"] == 2
    assert progress["percent"] == 50
    assert progress["rows_per_second"] and progress["eta_seconds"] is not None


def test_history_lists_the_municipalitys_runs(login, supervisor_a, finished_run, city_a):
    body = login(supervisor_a).get(f"/imports/{city_a.id}/").content.decode()
    assert "寄附者一覧.csv" in body


# --- Column mappings ------------------------------------------------------------------------


def test_mapping_created_from_a_preset_edited_and_validated(
    login, supervisor_a, city_a, finished_run
):
    client = login(supervisor_a)
    response = client.post(
        f"/imports/mappings/{city_a.id}/", {"style": "choice", "name": "チョイス 2024年版"}
    )
    mapping = ImportMapping.objects.get(municipality=city_a, name="チョイス 2024年版")
    assert response.status_code == 302 and response["Location"].endswith(f"/{mapping.id}/")
    assert mapping.mapping == PRESETS["choice"] and mapping.updated_by == supervisor_a

    page = client.get(f"/imports/mappings/edit/{mapping.id}/").content.decode()
    assert "寄附者番号" in page and "返礼品{n}_コード" in page
    assert "髙﨑①メモ" in page  # the last run's unknown column, as a hint

    form = _form_of(mapping)
    form["donation__note"] = "備考, 髙﨑①メモ"
    form["donor__phone"] = "電話番号1\n電話番号2"
    response = client.post(f"/imports/mappings/edit/{mapping.id}/", form)
    assert response.status_code == 302
    mapping.refresh_from_db()
    assert mapping.mapping["donation"]["note"] == ["備考", "髙﨑①メモ"]
    assert mapping.mapping["donor"]["phone"] == ["電話番号1", "電話番号2"]
    assert mapping.mapping["portal"] == "choice"

    # A required field left without columns: refused with a Japanese reason, nothing saved.
    form["donation__amount"] = ""
    response = client.post(f"/imports/mappings/edit/{mapping.id}/", form)
    assert response.status_code == 200
    assert "寄附金額は必須にしたので、列名を入れてください。" in response.content.decode()
    mapping.refresh_from_db()
    assert mapping.mapping["donation"]["amount"] == "寄附金額"

    # {n} outside the gift block.
    form["donation__amount"] = "寄附金額{n}"
    response = client.post(f"/imports/mappings/edit/{mapping.id}/", form)
    assert "返礼品の項目にだけ使えます" in response.content.decode()


def _form_of(mapping: ImportMapping) -> dict[str, str]:
    from donations_sync.forms import FIELD_LABELS, REQUIRABLE, join_columns

    form = {"name": mapping.name}
    for block, fields in FIELD_LABELS.items():
        for field, _ in fields:
            form[f"{block}__{field}"] = join_columns(mapping.mapping.get(block, {}).get(field))
            if block in REQUIRABLE and field in mapping.mapping["required"]:
                form[f"{block}__{field}__required"] = "on"
    return form


# --- 要確認 ---------------------------------------------------------------------------------


@pytest.fixture
def callback_a(city_a, finished_run):
    donation = DonationFactory(
        donor__municipality=city_a,
        donor__name="要確 一郎",
        portal_order_number="123456-20240101-00111801",
    )
    DonorPhoneFactory(donor=donation.donor, e164="+819011113333")
    return DonorCallback.objects.create(
        municipality=city_a,
        donor=donation.donor,
        donation=donation,
        run=finished_run,
        reasons=["電話番号も住所もありません"],
    )


def test_agent_sees_and_resolves_a_callback(login, agent_a, callback_a):
    client = login(agent_a)
    body = client.get("/callbacks/").content.decode()
    assert "要確 一郎" in body and 'href="tel:+819011113333"' in body
    assert "電話番号も住所もありません" in body and "123456-20240101-00111801" in body
    assert "寄附者一覧.csv" in body
    response = client.post(
        f"/callbacks/{callback_a.id}/resolve/", {"outcome": "confirmed", "note": "住所を確認"}
    )
    assert response.status_code == 302
    callback_a.refresh_from_db()
    assert callback_a.resolved_by == agent_a and callback_a.resolved_at is not None
    assert callback_a.outcome == "連絡がつき、内容を確認した：住所を確認"
    after = client.get("/callbacks/").content.decode()
    assert "対応済みにしました" in after
    assert f'data-callback="{callback_a.id}"' not in after and "要確認はありません。" in after


def test_city_official_reads_own_citys_callbacks_without_resolving(
    login, city_official_a, callback_a
):
    client = login(city_official_a)
    body = client.get("/callbacks/").content.decode()
    assert "要確 一郎" in body and "対応済みにする" not in body
    response = client.post(f"/callbacks/{callback_a.id}/resolve/", {"outcome": "confirmed"})
    assert response.status_code == 403
    callback_a.refresh_from_db()
    assert callback_a.resolved_at is None


# --- Scoping --------------------------------------------------------------------------------


def test_supervisor_of_another_city_gets_nothing_of_this_ones_imports(
    login, supervisor_b, city_a, finished_run, callback_a
):
    mapping = ImportMapping.objects.create(
        municipality=city_a, style="choice", name="A の対応表", mapping=PRESETS["choice"]
    )
    client = login(supervisor_b)
    for url in (
        f"/imports/runs/{finished_run.id}/",
        f"/imports/runs/{finished_run.id}/progress/",
        f"/imports/runs/{finished_run.id}/rejections.csv",
        f"/imports/runs/{finished_run.id}/rerun/",
        f"/imports/{city_a.id}/",
        f"/imports/mappings/{city_a.id}/",
        f"/imports/mappings/edit/{mapping.id}/",
    ):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"name": "乗っ取り", "style": "choice"}).status_code == 404, url
    assert (
        client.post(f"/callbacks/{callback_a.id}/resolve/", {"outcome": "confirmed"}).status_code
        == 404
    )
    response = client.post(
        "/imports/upload/",
        {
            "municipality": city_a.id,
            "style": "choice",
            "encoding": "",
            "file": ContentFile(_cp932_file([]), name="a.csv"),
        },
    )
    assert response.status_code == 200 and "正しく選択" in response.content.decode()
    assert ImportRun.objects.count() == 1
    mapping.refresh_from_db()
    assert mapping.name == "A の対応表"
    body = client.get("/callbacks/", {"m": city_a.id}).content.decode()
    assert "要確 一郎" not in body
    callback_a.refresh_from_db()
    assert callback_a.resolved_at is None


@pytest.mark.parametrize("role", ["agent", "city_official"])
def test_agents_and_city_officials_do_not_import(login, city_a, role, finished_run):
    user = UserFactory(role=role, municipalities=[city_a])
    client = login(user)
    for url in (
        "/imports/",
        "/imports/upload/",
        f"/imports/{city_a.id}/",
        f"/imports/runs/{finished_run.id}/",
        f"/imports/runs/{finished_run.id}/rejections.csv",
        f"/imports/mappings/{city_a.id}/",
    ):
        assert client.get(url).status_code == 403, url
    response = client.post(
        "/imports/upload/",
        {"municipality": city_a.id, "style": "choice", "file": ContentFile(b"a", name="a.csv")},
    )
    assert response.status_code == 403
    assert ImportRun.objects.count() == 1


def test_city_official_of_b_sees_no_callbacks_of_a(login, city_official_b, callback_a, city_a):
    body = login(city_official_b).get("/callbacks/", {"m": city_a.id}).content.decode()
    assert "要確 一郎" not in body and "+819011113333" not in body
