"""Every write goes through tickets.services and leaves an audit row of the right kind."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from helpdesk.models import FollowUp, Queue, Ticket, TicketChange

from tests.factories import DonationFactory, DonorFactory, MunicipalityFactory, ShipmentFactory
from tickets import services
from tickets.models import Channel, Inquiry, InquiryEvent, MunicipalityQueue, Severity, Status
from tickets.signals import inquiry_replied

pytestmark = pytest.mark.django_db

Kind = InquiryEvent.Kind


def kinds(inquiry: Inquiry) -> list[str]:
    return list(inquiry.events.order_by("at", "followup_id").values_list("kind", flat=True))


def changes(followup: FollowUp) -> list[tuple[str, str, str]]:
    return list(
        TicketChange.objects.filter(followup=followup).values_list(
            "field", "old_value", "new_value"
        )
    )


def test_each_municipality_gets_its_own_queue_when_created(city_a):
    link = MunicipalityQueue.objects.get(municipality=city_a)
    assert link.queue.slug == "m012033"
    assert link.queue.title == "小樽市"
    other = MunicipalityFactory(code="142051", name="鎌倉市")
    assert Queue.objects.get(municipality_link__municipality=other).title == "鎌倉市"


def test_open_creates_ticket_in_the_municipality_queue_with_an_opened_row(open_inquiry, city_a):
    donor = DonorFactory(municipality=city_a)
    donation = DonationFactory(donor=donor)
    inquiry = open_inquiry(
        donor=donor, donations=[donation], category="shipping_status", severity="high"
    )
    ticket = Ticket.objects.get(pk=inquiry.pk)
    assert ticket.queue.municipality_link.municipality == city_a
    assert ticket.status == Status.OPEN
    assert ticket.priority == 2  # helpdesk's priority agrees with our severity
    assert inquiry.category.code == "shipping_status"
    assert inquiry.is_escalation_severity
    assert list(inquiry.donations.all()) == [donation]
    assert kinds(inquiry) == [Kind.OPENED]
    assert mail.outbox == []


def test_open_refuses_records_of_another_municipality(open_inquiry, city_b):
    with pytest.raises(services.InquiryError):
        open_inquiry(donor=DonorFactory(municipality=city_b))
    assert not Inquiry.objects.exists()


def test_city_official_and_unassigned_agent_cannot_write(
    open_inquiry, city_official_a, city_b, agent_a
):
    with pytest.raises(PermissionDenied):
        open_inquiry(actor=city_official_a)
    with pytest.raises(PermissionDenied):
        open_inquiry(actor=agent_a, municipality=city_b)
    inquiry = open_inquiry()
    with pytest.raises(PermissionDenied):
        services.inquiry_add_note(actor=city_official_a, inquiry=inquiry, body="x")


def test_system_actor_may_open(open_inquiry):
    inquiry = open_inquiry(actor=None, channel=Channel.EMAIL, submitter_email="a@example.jp")
    assert inquiry.events.get().actor is None


def test_reply_is_public_sets_first_response_and_signals_after_commit(
    open_inquiry, agent_a, django_capture_on_commit_callbacks
):
    inquiry = open_inquiry(submitter_email="donor@example.jp")
    received = []

    def listener(sender, **kwargs):
        received.append(kwargs)

    inquiry_replied.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            followup = services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="確認いたします")
            assert received == []  # not before commit
        assert len(callbacks) == 1
    finally:
        inquiry_replied.disconnect(listener)
    assert received[0]["followup_id"] == followup.pk
    assert received[0]["actor"] == agent_a
    assert received[0]["inquiry"].pk == inquiry.pk
    assert followup.public is True
    assert followup.event.kind == Kind.REPLY
    inquiry.refresh_from_db()
    assert inquiry.first_response_at == followup.date
    # helpdesk's own notifications never go out; the mail app sends replies.
    assert mail.outbox == []


def test_first_response_is_the_first_reply_only(open_inquiry, agent_a):
    inquiry = open_inquiry()
    first = services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="1")
    services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="2")
    inquiry.refresh_from_db()
    assert inquiry.first_response_at == first.date


def test_notes_are_private_and_operator_only_can_be_filtered(
    open_inquiry, agent_a, city_official_a
):
    inquiry = open_inquiry()
    secret = services.inquiry_add_note(
        actor=agent_a, inquiry=inquiry, body="寄附者は過去に苦情多数"
    )
    shared = services.inquiry_add_note(
        actor=agent_a, inquiry=inquiry, body="市に確認済み", operator_only=False, title="通話記録"
    )
    assert secret.public is False and secret.event.operator_only is True
    assert shared.public is False and shared.event.operator_only is False
    assert shared.title == "通話記録"
    assert secret in inquiry.followups_visible_to(agent_a)
    city_sees = list(inquiry.followups_visible_to(city_official_a))
    assert shared in city_sees and secret not in city_sees


def test_customer_message_joins_and_reopens_resolved_ticket(open_inquiry, agent_a):
    inquiry = open_inquiry()
    services.inquiry_change_status(actor=agent_a, inquiry=inquiry, status=Status.RESOLVED)
    inquiry.refresh_from_db()
    assert inquiry.resolved_at is not None
    followup = services.inquiry_add_customer_message(
        inquiry=inquiry, body="まだ届きません", channel=Channel.EMAIL, sender="d@example.jp"
    )
    inquiry.refresh_from_db()
    assert inquiry.status == Status.REOPENED
    assert inquiry.ticket.status == Status.REOPENED
    assert inquiry.resolved_at is None
    assert followup.public is True
    assert followup.event.sender == "d@example.jp"
    assert changes(followup) == [("status", "解決済", "再開")]
    assert kinds(inquiry) == [Kind.OPENED, Kind.STATUS, Kind.CUSTOMER_MESSAGE]


def test_status_change_mirrors_helpdesk_and_audits(open_inquiry, agent_a):
    inquiry = open_inquiry()
    followup = services.inquiry_change_status(
        actor=agent_a, inquiry=inquiry, status=Status.CLOSED, comment="完了"
    )
    assert followup.new_status == Status.CLOSED
    assert changes(followup) == [("status", "未解決", "完了")]
    assert Ticket.objects.get(pk=inquiry.pk).status == Status.CLOSED
    assert (
        services.inquiry_change_status(actor=agent_a, inquiry=inquiry, status=Status.CLOSED) is None
    )


def test_category_severity_and_assign_are_audited(open_inquiry, agent_a, supervisor):
    inquiry = open_inquiry()
    f1 = services.inquiry_change_category(actor=agent_a, inquiry=inquiry, category="damaged")
    f2 = services.inquiry_change_severity(actor=agent_a, inquiry=inquiry, severity=Severity.URGENT)
    f3 = services.inquiry_assign(actor=agent_a, inquiry=inquiry, assignee=supervisor)
    assert changes(f1) == [("category", "", "破損・傷み")]
    assert changes(f2) == [("severity", "通常", "緊急")]
    assert changes(f3) == [("assigned_to", "", "supervisor")]
    ticket = Ticket.objects.get(pk=inquiry.pk)
    assert ticket.priority == 1 and ticket.assigned_to == supervisor
    inquiry.refresh_from_db()
    assert inquiry.assigned_to == supervisor  # the mirror the queue lists filter on
    assert kinds(inquiry) == [Kind.OPENED, Kind.CATEGORY, Kind.SEVERITY, Kind.ASSIGN]


def test_assign_refuses_staff_of_other_municipalities(open_inquiry, agent_a, city_official_a):
    inquiry = open_inquiry()
    with pytest.raises(services.InquiryError):
        services.inquiry_assign(actor=agent_a, inquiry=inquiry, assignee=city_official_a)


def test_link_and_unlink_records_are_audited(open_inquiry, agent_a, city_a, city_b):
    inquiry = open_inquiry()
    shipment = ShipmentFactory(donation__donor__municipality=city_a)
    donation = shipment.donation
    linked = services.inquiry_link_records(
        actor=agent_a,
        inquiry=inquiry,
        donor=donation.donor,
        donations=[donation],
        shipments=[shipment],
    )
    assert [c[0] for c in changes(linked)] == ["donor", "donations", "shipments"]
    assert list(inquiry.shipments.all()) == [shipment]
    unlinked = services.inquiry_unlink_records(actor=agent_a, inquiry=inquiry, shipments=[shipment])
    assert changes(unlinked) == [("shipments", str(shipment), "")]
    assert not inquiry.shipments.exists()
    with pytest.raises(services.InquiryError):
        services.inquiry_link_records(
            actor=agent_a, inquiry=inquiry, donations=[DonationFactory(donor__municipality=city_b)]
        )


def test_merge_closes_duplicate_and_moves_links(open_inquiry, agent_a, city_a):
    donation = DonationFactory(donor__municipality=city_a)
    target = open_inquiry(title="受領証明書が届かない")
    duplicate = open_inquiry(title="受領証明書の再発行", donations=[donation])
    services.inquiry_merge(actor=agent_a, duplicate=duplicate, into=target)
    duplicate.refresh_from_db()
    assert duplicate.status == Status.DUPLICATE
    assert duplicate.ticket.merged_to_id == target.pk
    assert list(target.donations.all()) == [donation]
    assert kinds(target)[-1] == Kind.MERGE and kinds(duplicate)[-1] == Kind.MERGE
    with pytest.raises(services.InquiryError):
        services.inquiry_merge(actor=agent_a, duplicate=duplicate, into=target)


def test_every_followup_has_an_event(open_inquiry, agent_a):
    inquiry = open_inquiry()
    services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="返信")
    services.inquiry_add_note(actor=agent_a, inquiry=inquiry, body="メモ")
    assert FollowUp.objects.filter(ticket_id=inquiry.pk, event__isnull=True).count() == 0
    assert FollowUp.objects.filter(ticket_id=inquiry.pk).count() == 3
