"""Tables and constraints of the ticket core, and the migration-created data."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as global_apps
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from helpdesk.models import Queue, Ticket

from crm.models import Municipality
from tickets import services
from tickets.models import (
    ESCALATION_SEVERITIES,
    Category,
    Inquiry,
    InquiryEvent,
    MunicipalityQueue,
    Severity,
)

pytestmark = pytest.mark.django_db


def test_taxonomy_is_seeded_in_order():
    codes = list(Category.objects.values_list("code", flat=True))
    assert len(codes) == 17
    assert codes[0] == "how_to_donate" and codes[-1] == "other"
    assert Category.objects.get(code="receipt").name == "受領証明書（未着・再発行）"


def test_category_code_is_unique():
    with pytest.raises(IntegrityError), transaction.atomic():
        Category.objects.create(code="damaged", name="重複")


def test_one_inquiry_per_ticket(open_inquiry, city_a):
    inquiry = open_inquiry()
    with pytest.raises(IntegrityError), transaction.atomic():
        Inquiry.objects.create(
            ticket=inquiry.ticket,
            municipality=city_a,
            channel="phone",
            created_at=inquiry.created_at,
            last_activity_at=inquiry.created_at,
        )


def test_queue_follows_municipality_rename(city_a):
    city_a.name = "小樽市役所"
    city_a.save()
    assert MunicipalityQueue.objects.get(municipality=city_a).queue.title == "小樽市役所"
    assert Queue.objects.filter(municipality_link__municipality=city_a).count() == 1


def test_migration_gives_existing_municipalities_a_queue(city_a):
    # A municipality that existed before the ticket app: no queue yet.
    link = MunicipalityQueue.objects.get(municipality=city_a)
    link.delete()
    link.queue.delete()
    migration = importlib.import_module("tickets.migrations.0002_categories_and_queues")
    migration.seed(global_apps, connection.schema_editor())
    assert MunicipalityQueue.objects.get(municipality=city_a).queue.slug == "m012033"


def test_escalation_severities_are_queryable(open_inquiry):
    urgent = open_inquiry(severity=Severity.URGENT)
    open_inquiry(severity=Severity.NORMAL)
    assert list(Inquiry.objects.filter(severity__in=ESCALATION_SEVERITIES)) == [urgent]
    assert urgent.is_escalation_severity


def test_scoped_manager(open_inquiry, city_official_b, agent_a):
    inquiry = open_inquiry()
    assert list(Inquiry.objects.visible_to(agent_a)) == [inquiry]
    assert not Inquiry.objects.visible_to(city_official_b).exists()
    assert not InquiryEvent.objects.visible_to(city_official_b).exists()


def test_deleting_a_ticket_removes_its_side_rows(open_inquiry):
    inquiry = open_inquiry()
    Ticket.objects.filter(pk=inquiry.pk).delete()
    assert not Inquiry.objects.exists() and not InquiryEvent.objects.exists()


def test_municipality_with_tickets_cannot_be_deleted(open_inquiry, city_a):
    open_inquiry()
    with pytest.raises(ProtectedError), transaction.atomic():
        Municipality.objects.filter(pk=city_a.pk).delete()
    assert services.municipality_queue_ensure(municipality=city_a).slug == "m012033"
