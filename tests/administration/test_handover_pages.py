"""The hand-over pages: an operator admin exports, downloads, deletes and fetches the
certificate through HTTP (the work runs as Celery tasks); nobody else reaches them."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from administration.handover.models import HandoverDeletion, HandoverExport, RetentionPolicy
from crm.models import AuditLog, Municipality, PersonalDataAccess
from tests.administration.handover_data import fill_city
from tests.conftest import login_as, response_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _dirs_and_eager(settings, tmp_path):
    from config.celery import app

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.HANDOVER_ROOT = tmp_path / "handover"
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


def _urls(city, export_id: int, deletion_id: int) -> list[tuple[str, str]]:
    return [
        ("get", reverse("administration:handover_index")),
        ("get", reverse("administration:handover_municipality", args=[city.pk])),
        ("post", reverse("administration:handover_export_start", args=[city.pk])),
        ("post", reverse("administration:handover_deletion_start", args=[city.pk])),
        ("post", reverse("administration:retention_municipality", args=[city.pk])),
        ("get", reverse("administration:handover_export", args=[export_id])),
        ("get", reverse("administration:handover_export_download", args=[export_id])),
        ("get", reverse("administration:handover_deletion", args=[deletion_id])),
        ("get", reverse("administration:handover_certificate", args=[deletion_id])),
        ("get", reverse("administration:retention_default")),
        ("post", reverse("administration:retention_default")),
    ]


def test_operator_admin_hands_a_city_over(
    operator_admin, city_a, city_b, django_capture_on_commit_callbacks
):
    fill_city(city_a, tag="a")
    fill_city(city_b, tag="b", rich=False)
    client = login_as(Client(), operator_admin)
    page = client.get(reverse("administration:handover_municipality", args=[city_a.pk]))
    assert page.status_code == 200 and "小樽市" in page.content.decode()
    # Deleting before any export is refused.
    response = client.post(
        reverse("administration:handover_deletion_start", args=[city_a.pk]),
        {"confirm_code": city_a.code},
        follow=True,
    )
    assert "出力が完了していません" in response.content.decode()
    assert not HandoverDeletion.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("administration:handover_export_start", args=[city_a.pk]))
    export = HandoverExport.objects.get()
    assert response.url == reverse("administration:handover_export", args=[export.pk])
    page = client.get(response.url).content.decode()
    assert export.sha256 and export.sha256 in page and "完了" in page
    download = client.get(reverse("administration:handover_export_download", args=[export.pk]))
    assert download.status_code == 200
    assert "README.md" in zipfile.ZipFile(io.BytesIO(response_bytes(download))).namelist()
    assert AuditLog.objects.filter(action="handover_export", user=operator_admin).exists()
    assert AuditLog.objects.filter(action="handover_download", user=operator_admin).exists()
    assert PersonalDataAccess.objects.filter(
        user=operator_admin, action="export", record_type="handover.zip"
    ).exists()

    # A wrong code is refused; the right one deletes everything of city A.
    client.post(
        reverse("administration:handover_deletion_start", args=[city_a.pk]),
        {"confirm_code": city_b.code},
    )
    assert not HandoverDeletion.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("administration:handover_deletion_start", args=[city_a.pk]),
            {"confirm_code": city_a.code},
        )
    run = HandoverDeletion.objects.get()
    assert run.status == "done" and run.export_id == export.pk
    assert not Municipality.objects.filter(pk=city_a.pk).exists()
    assert AuditLog.objects.filter(action="handover_delete", user=operator_admin).exists()
    page = client.get(response.url).content.decode()
    assert "削除証明書" in page
    pdf = client.get(reverse("administration:handover_certificate", args=[run.pk]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response_bytes(pdf))).pages)
    assert "crm.Donor" in text and str(run.rows_deleted) in text
    # The export's file went with the data; its page still shows the checksum.
    gone = client.get(reverse("administration:handover_export_download", args=[export.pk]))
    assert gone.status_code == 404
    page = client.get(reverse("administration:handover_export", args=[export.pk])).content.decode()
    assert export.sha256 in page and "削除しました" in page


def test_retention_settings_are_saved_and_audited(operator_admin, city_a):
    client = login_as(Client(), operator_admin)
    client.post(reverse("administration:retention_default"), {"recordings_days": "90"})
    client.post(
        reverse("administration:retention_municipality", args=[city_a.pk]),
        {"raw_mail_days": "30", "closed_inquiries_years": "5"},
    )
    default = RetentionPolicy.objects.get(municipality=None)
    own = RetentionPolicy.objects.get(municipality=city_a)
    assert default.recordings_days == 90 and own.raw_mail_days == 30
    assert own.closed_inquiries_years == 5
    assert AuditLog.objects.filter(action="retention_change").count() == 2
    page = client.get(reverse("administration:handover_municipality", args=[city_a.pk]))
    assert "通話録音 90日" in page.content.decode()


@pytest.mark.parametrize("who", ["agent_a", "supervisor", "city_official_a", "city_official_b"])
def test_nobody_but_operator_admins_reaches_the_pages(who, request, city_a, operator_admin):
    user = request.getfixturevalue(who)
    export = HandoverExport.objects.create(
        municipality=city_a, municipality_code=city_a.code, municipality_name=city_a.name
    )
    run = HandoverDeletion.objects.create(
        municipality=city_a,
        municipality_code=city_a.code,
        municipality_name=city_a.name,
        requested_by_name="x",
    )
    client = login_as(Client(), user)
    for method, url in _urls(city_a, export.pk, run.pk):
        response = getattr(client, method)(url, {"confirm_code": city_a.code})
        assert response.status_code == 403, (who, url)
    assert HandoverExport.objects.count() == 1 and HandoverDeletion.objects.count() == 1
    assert Municipality.objects.filter(pk=city_a.pk).exists()


def test_operator_admin_without_two_factor_is_stopped(operator_admin, city_a):
    client = Client()
    client.force_login(operator_admin)  # password only, no TOTP in this session
    for method, url in _urls(city_a, 1, 1):
        response = getattr(client, method)(url)
        if response.status_code != 403:
            assert response.status_code == 302 and response.url.startswith(reverse("two_factor"))


def test_the_sweep_resends_a_run_whose_worker_vanished(city_a, settings):
    """An export whose task was lost (broker down, worker host gone) is sent again by beat."""
    import datetime

    from django.utils import timezone

    from administration.handover.tasks import handover_sweep

    fill_city(city_a, tag="a")
    export = HandoverExport.objects.create(
        municipality=city_a, municipality_code=city_a.code, municipality_name=city_a.name
    )
    fresh = HandoverExport.objects.create(
        municipality=city_a, municipality_code=city_a.code, municipality_name=city_a.name
    )
    old = timezone.now() - datetime.timedelta(seconds=settings.HANDOVER_STALE_SECONDS + 60)
    HandoverExport.objects.filter(pk=export.pk).update(requested_at=old, status="running")
    assert handover_sweep.apply().get() == 1
    export.refresh_from_db()
    fresh.refresh_from_db()
    assert export.status == "done" and export.sha256
    assert fresh.status == "queued"  # still within its time: left to its own task
