"""Purge by retention, as beat runs it: only what is past its time, only where a policy says."""

from __future__ import annotations

import datetime

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from administration.handover.models import RetentionPolicy
from administration.handover.tasks import retention_purge_all
from crm.models import AuditLog
from telephony.models import Call
from tests.administration.handover_data import fill_city
from tickets.mail.models import InboundAttachment, InboundMessage
from tickets.models import Inquiry, Status

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _age(city, days: int) -> None:
    then = timezone.now() - datetime.timedelta(days=days)
    InboundMessage.objects.filter(municipality=city).update(received_at=then)
    Inquiry.objects.filter(municipality=city).update(
        status=Status.CLOSED, resolved_at=then, created_at=then
    )


def test_purge_removes_what_is_past_its_time(city_a, city_b):
    data_a = fill_city(city_a, tag="a")
    data_b = fill_city(city_b, tag="b", rich=False)
    _age(city_a, 800)
    _age(city_b, 800)
    # A default for everyone (recordings) and city A's own periods; city B has only the default.
    RetentionPolicy.objects.create(municipality=None, recordings_days=365)
    RetentionPolicy.objects.create(
        municipality=city_a, raw_mail_days=30, attachments_days=30, closed_inquiries_years=2
    )
    assert default_storage.exists(data_a["attachment_file"])

    assert retention_purge_all.apply().get() > 0

    call_a = Call.objects.get(pk=data_a["call"].pk)
    call_b = Call.objects.get(pk=data_b["call"].pk)
    assert call_a.recording_sid == "" and call_a.recording_url == ""  # default: 365 days
    assert call_b.recording_sid == ""  # the default applies to B too (the call is 400 days old)
    assert bytes(InboundMessage.objects.get(municipality=city_a).raw) == b""
    assert bytes(InboundMessage.objects.get(municipality=city_b).raw) != b""
    attachment = InboundAttachment.objects.get(municipality=city_a)
    assert bytes(attachment.data) == b"" and attachment.status == "refused"
    assert bytes(InboundAttachment.objects.get(municipality=city_b).data) != b""
    assert not default_storage.exists(data_a["attachment_file"])
    assert default_storage.exists(data_b["attachment_file"])
    # Closed 800 days ago, kept 2 years: gone with its timeline; B keeps its inquiry.
    assert not Inquiry.objects.filter(municipality=city_a).exists()
    assert Inquiry.objects.filter(municipality=city_b).exists()
    log = AuditLog.objects.get(action="retention_purge", detail__policy_municipality=city_a.code)
    assert log.detail["inquiries"] == 1 and log.detail["raw_mail"] == 1
    assert log.detail["recordings"] == 1


def test_nothing_is_purged_within_its_period(city_a):
    data = fill_city(city_a, tag="a")
    _age(city_a, 10)
    RetentionPolicy.objects.create(
        municipality=city_a,
        recordings_days=1000,
        raw_mail_days=30,
        attachments_days=30,
        closed_inquiries_years=1,
    )
    retention_purge_all.apply()
    assert Call.objects.get(pk=data["call"].pk).recording_sid == "REa"
    assert bytes(InboundMessage.objects.get(municipality=city_a).raw) != b""
    assert Inquiry.objects.filter(municipality=city_a).exists()
    assert not AuditLog.objects.filter(action="retention_purge").exists()
