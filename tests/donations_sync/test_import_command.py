"""manage.py import_donations: foreground with progress and a summary, or queued to a worker."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from donations_sync.models import Donation, ImportRun
from tests.donations_sync.test_import_apply import choice_file, choice_row


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def run_command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_donations", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_foreground_import_prints_counts_unknown_columns_and_rejections(
    city_a, tmp_path, capsys
) -> None:
    path = tmp_path / "寄附者一覧.csv"
    path.write_bytes(choice_file([choice_row("C001"), choice_row("C002", 申込日="令和6年2月30日")]))
    out, _ = run_command(str(path), "--municipality", city_a.code, "--source", "choice")

    assert "完了" in out and "cp932" in out
    assert "新規 1" in out and "取込不可 1" in out
    assert "対応表にない列：システム予備欄" in out
    assert "3行目［申込日］ 存在しない日付です（令和6年2月30日）" in out
    assert "行/秒" in capsys.readouterr().err  # the progress line
    run = ImportRun.objects.get()
    assert run.original_name == "寄附者一覧.csv" and run.status == ImportRun.Status.DONE
    assert Donation.objects.filter(municipality=city_a, external_id="EX-C001").exists()

    again, _ = run_command(str(path), "--municipality", city_a.code, "--source", "choice")
    assert "新規 0" in again and "変更なし 1" in again


def test_encoding_override_and_file_errors(city_a, tmp_path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(choice_file([choice_row("C010")]))
    with pytest.raises(CommandError, match="見出し行"):
        run_command(
            str(path), "--municipality", city_a.code, "--source", "choice", "--encoding", "utf-8"
        )
    assert ImportRun.objects.get().status == ImportRun.Status.FAILED
    with pytest.raises(CommandError, match="自治体コード"):
        run_command(str(path), "--municipality", "999999", "--source", "choice")
    with pytest.raises(CommandError, match="必須の列"):
        run_command(str(path), "--municipality", city_a.code, "--source", "rakuten")


def test_background_queues_the_run_for_a_worker(
    city_a, tmp_path, django_capture_on_commit_callbacks
) -> None:
    from config.celery import app  # noqa: PLC0415

    path = tmp_path / "x.csv"
    path.write_bytes(choice_file([choice_row("C020")]))
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            out, _ = run_command(
                str(path), "--municipality", city_a.code, "--source", "choice", "--background"
            )
    finally:
        app.conf.task_always_eager = previous
    assert "ワーカーで実行します" in out
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.DONE and run.imported == 1
