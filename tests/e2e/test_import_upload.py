"""A supervisor uploads a CP932 export with a bad row in Chromium, watches the run progress to
its end (pushed over the run's websocket by a real Celery worker running the durable job), reads
the result and downloads the rejected rows in CP932 with the original header."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crm.models import User
from donations_sync.models import ImportRun
from tests.e2e.conftest import ROOT
from tests.factories import UserFactory
from tests.polling import wait_until
from tests.processes import database_url, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
LIVE_MS = 60_000
GOOD_ROWS = 3000

HEADER = [
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


def _export() -> bytes:
    rows = [
        [
            f"E2E-{n:05d}",
            "髙﨑 花子" if n % 2 else "山田 太郎",
            "ﾀｶｻｷ ﾊﾅｺ",
            "047-0032",
            "北海道",
            "小樽市",
            f"稲穂{n}-1",
            f"090-1234-{n % 10000:04d}",
            f"E2E{n:07d}",
            "令和6年1月5日",
            "￥10,000",
            "クレジットカード",
            "①",
        ]
        for n in range(1, GOOD_ROWS + 1)
    ]
    bad = ["E2E-99999", "日付 誤り", "ﾋﾂﾞｹ", "", "", "", "", "", "E2E9999999", "2024/13/45"]
    bad += ["5000", "", ""]
    rows.insert(10, bad)
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows([HEADER, *rows])
    return text.getvalue().encode("cp932")


@pytest.fixture
def import_worker(django_db_setup, django_db_blocker) -> Iterator[None]:
    """A Celery worker on the test database and the suite's Redis (the live server's broker)."""
    from django.db import connection

    if not os.environ.get("REDIS_URL"):
        yield  # no broker: the live server runs tasks eagerly itself
        return
    log = Path(tempfile.gettempdir()) / f"fz-e2e-import-worker-{os.getpid()}.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
    }
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo"]
    argv += ["--without-gossip", "--without-mingle", "-l", "info", "-n", f"e2e{free_port()}@%h"]
    with open(log, "wb") as handle:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
        try:
            text = wait_until(
                lambda: log.read_text(errors="replace"), lambda t: "ready." in t, timeout=60
            )
            assert "ready." in text, f"celery worker did not start:\n{text[-3000:]}"
            yield
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def test_upload_progress_result_and_rejected_rows_download(
    page, browser_login, city_a, import_worker, csp_violations
):
    supervisor = UserFactory(
        username="sv_import", role=User.Role.SUPERVISOR, municipalities=[city_a]
    )
    frames: list[str] = []
    page.on(
        "websocket",
        lambda ws: (
            ws.on("framereceived", lambda payload: frames.append(str(payload)))
            if "/ws/imports/" in ws.url
            else None
        ),
    )
    browser_login(page, supervisor)
    page.goto("/imports/upload/")
    page.select_option("select[name=municipality]", str(city_a.id))
    page.select_option("select[name=style]", "choice")
    page.set_input_files(
        "input[name=file]",
        files=[{"name": "寄附者一覧.csv", "mimeType": "text/csv", "buffer": _export()}],
    )
    with page.expect_navigation():
        page.click("#import-upload button[type=submit]")
    assert "/imports/runs/" in page.url
    run = ImportRun.objects.get(municipality=city_a)
    try:
        progress = page.locator("#import-progress")
        expect(progress.locator("[data-field=status_label]")).to_have_text("完了", timeout=LIVE_MS)
        assert any("rows_read" in frame for frame in frames), "no progress over the socket"

        expect(page.locator("[data-count=imported]")).to_have_text(f"{GOOD_ROWS:,}")
        expect(page.locator("[data-count=rejected]")).to_have_text("1")
        expect(page.locator(".unknown-columns")).to_contain_text("髙﨑メモ")
        rejected = page.locator("#rejections tbody tr")
        expect(rejected).to_have_count(1)
        expect(rejected.first).to_contain_text("12")  # line 12: header, ten rows, then this
        expect(rejected.first).to_contain_text("申込日")

        with page.expect_download() as download_info:
            page.click("#rejections-download")
        data = Path(download_info.value.path()).read_bytes()
        rows = list(csv.reader(io.StringIO(data.decode("cp932"))))
        assert rows[0] == [*HEADER, "理由"]
        assert len(rows) == 2 and rows[1][0] == "E2E-99999" and rows[1][9] == "2024/13/45"
        assert "申込日" in rows[1][-1]
        assert csp_violations == []
    finally:
        run.refresh_from_db()
        if run.raw_file:
            run.raw_file.delete(save=False)


def _signal_progress(run_id: int) -> None:
    """As the engine does, from a thread of its own: this one runs Playwright's event loop, on
    which the channel layer's synchronous send refuses to run."""
    from django.db import connection

    from donations_sync.signals import import_run_progressed

    def send() -> None:
        try:
            import_run_progressed.send(sender=ImportRun, run_id=run_id)
        finally:
            connection.close()

    sender = threading.Thread(target=send)
    sender.start()
    sender.join()


def test_run_page_follows_pushed_progress_and_shows_the_result(page, browser_login, city_a):
    """Progress signalled by the engine (here by hand) reaches the open page; the end reloads it
    with the result."""
    from django.core.files.base import ContentFile
    from django.utils import timezone

    from donations_sync.imports import PRESETS
    from donations_sync.models import ImportRejection

    supervisor = UserFactory(
        username="sv_watch", role=User.Role.SUPERVISOR, municipalities=[city_a]
    )
    raw = _export()
    run = ImportRun.objects.create(
        municipality=city_a,
        style="choice",
        mapping=PRESETS["choice"],
        raw_file=ContentFile(raw, name="watch.csv"),
        original_name="watch.csv",
        size=len(raw),
        status=ImportRun.Status.RUNNING,
        started_at=timezone.now() - timezone.timedelta(seconds=2),
    )
    try:
        browser_login(page, supervisor)
        page.goto(f"/imports/runs/{run.id}/")
        progress = page.locator("#import-progress")
        expect(progress.locator("[data-field=status_label]")).to_have_text("取込中")
        expect(page.locator("#import-connection")).to_have_attribute("data-live", "open")

        ImportRun.objects.filter(pk=run.id).update(rows_read=1500, bytes_read=len(raw) // 2)
        _signal_progress(run.id)
        expect(progress.locator("[data-field=rows_read]")).to_have_text("1,500", timeout=LIVE_MS)
        expect(progress.locator("[data-field=eta]")).to_contain_text("約")

        ImportRejection.objects.create(
            run=run, line=12, column="申込日", reason="日付として読めません"
        )
        ImportRun.objects.filter(pk=run.id).update(
            rows_read=GOOD_ROWS + 1,
            status=ImportRun.Status.DONE,
            finished_at=timezone.now(),
            imported=GOOD_ROWS,
            rejected=1,
        )
        _signal_progress(run.id)
        expect(page.locator("[data-count=imported]")).to_have_text(
            f"{GOOD_ROWS:,}", timeout=LIVE_MS
        )
        expect(progress.locator("[data-field=status_label]")).to_have_text("完了")
        expect(page.locator("#rejections tbody tr")).to_contain_text("日付として読めません")
    finally:
        run.raw_file.delete(save=False)
