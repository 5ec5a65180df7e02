"""Fetched mail is stored and processed a chunk at a time: each message must come out exactly as
it would alone, a failing one must not take the others down, and a chunk costs a few
statements, not a few per message."""

from __future__ import annotations

import mailbox as stdlib_mailbox

import pytest
from django.db import connection
from helpdesk.models import FollowUp

from tests.factories import DonationFactory, DonorEmailFactory, DonorFactory
from tests.tickets.mail.conftest import ADDRESS_A, make_mail
from tickets.mail import intake
from tickets.mail.models import InboundMessage, InquiryMailThread
from tickets.mail.services import inbound
from tickets.models import Channel, Inquiry, InquiryEvent

pytestmark = pytest.mark.django_db(transaction=False)


def receive(raws: list[bytes]) -> list[InboundMessage]:
    per_raw = inbound.inbound_receive_many(
        raws=raws, source=InboundMessage.Source.MAILDIR, recipient=ADDRESS_A
    )
    assert all(len(messages) == 1 for messages in per_raw)
    return [InboundMessage.objects.get(pk=messages[0].pk) for messages in per_raw]


def test_each_mail_of_a_batch_comes_out_as_it_would_alone(mailbox_a, city_a, settings):
    settings.MAIL_RATE_LIMIT_PER_HOUR = 2
    donor = DonorFactory(municipality=city_a)
    DonorEmailFactory(donor=donor, address="yamada@example.jp")
    donation = DonationFactory(donor=donor, portal_order_number="123456-20241201-00000042")
    first = make_mail(sender="yamada@example.jp", subject="初回", message_id="<m1@example.jp>")
    raws = [
        first,
        # A reply to the first mail of the same batch joins its ticket.
        make_mail(
            sender="yamada@example.jp",
            subject="Re: 初回",
            body="追記です。",
            headers={"In-Reply-To": "<m1@example.jp>"},
        ),
        # The first mail delivered again with other headers.
        first.replace(b"Subject:", b"X-Resent: 1\nSubject:", 1),
        make_mail(subject="自動応答", headers={"Auto-Submitted": "auto-replied"}),
        make_mail(sender="sato@example.jp", body="受付番号 123456-20241201-00000042 の件"),
        make_mail(sender="flood@example.jp", subject="1"),
        make_mail(sender="flood@example.jp", subject="2"),
        make_mail(sender="flood@example.jp", subject="3"),
    ]
    reply_to_first, redelivered, auto, named, flood1, flood2, flood3 = receive(raws)[1:]
    opened = InboundMessage.objects.get(message_id="m1@example.jp", created_inquiry=True)

    assert opened.status == InboundMessage.Status.PROCESSED
    assert opened.inquiry.donor == donor
    assert opened.inquiry.ticket.title == "初回"
    assert reply_to_first.status == InboundMessage.Status.PROCESSED
    assert reply_to_first.inquiry == opened.inquiry and not reply_to_first.created_inquiry
    assert FollowUp.objects.get(pk=reply_to_first.followup_id).comment == "追記です。"
    assert redelivered.status == InboundMessage.Status.DUPLICATE
    assert auto.status == InboundMessage.Status.AUTO_REPLY and auto.inquiry is None
    assert list(named.inquiry.donations.all()) == [donation]
    assert named.inquiry.donor == donor
    assert [flood1.status, flood2.status, flood3.status] == [
        InboundMessage.Status.PROCESSED,
        InboundMessage.Status.PROCESSED,
        InboundMessage.Status.QUARANTINED,
    ]
    assert "受信制限" in flood3.reason
    # Every ticket opened from the batch has its 受付 entry and its reply token.
    inquiries = Inquiry.objects.filter(municipality=city_a)
    assert inquiries.count() == 4
    for inquiry in inquiries:
        assert inquiry.channel == Channel.EMAIL
        assert InquiryEvent.objects.filter(inquiry=inquiry, kind=InquiryEvent.Kind.OPENED).count()
        assert InquiryMailThread.objects.filter(inquiry=inquiry).count() == 1


def test_a_chunk_of_new_mail_costs_a_few_statements_not_a_few_per_mail(
    mailbox_a, city_a, django_assert_max_num_queries
):
    raws = [make_mail(sender=f"d{i}@example.jp", subject=f"件名{i}") for i in range(40)]
    with django_assert_max_num_queries(30):
        per_raw = inbound.inbound_receive_many(
            raws=raws, source=InboundMessage.Source.MAILDIR, recipient=ADDRESS_A
        )
    statuses = {m.status for ms in per_raw for m in ms}
    assert statuses == {InboundMessage.Status.PROCESSED}
    assert Inquiry.objects.filter(municipality=city_a).count() == 40


@pytest.mark.skipif(connection.vendor != "postgresql", reason="uses a PostgreSQL trigger")
def test_a_mail_the_database_refuses_is_quarantined_and_the_rest_of_its_chunk_processed(
    mailbox_a, city_a, tmp_path
):
    # The database itself refuses one ticket (as a constraint or a full disk would).
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION refuse_boom() RETURNS trigger AS $$
            BEGIN
              IF NEW.search_text LIKE '%boom%' THEN
                RAISE EXCEPTION 'refused by the database';
              END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_boom BEFORE INSERT ON tickets_inquiry
              FOR EACH ROW EXECUTE FUNCTION refuse_boom();
            """
        )
    md = stdlib_mailbox.Maildir(tmp_path / "Maildir", create=True)
    for i, subject in enumerate(["前", "boom", "後"]):
        md.add(make_mail(sender=f"d{i}@example.jp", subject=subject))

    result = intake.ingest_maildir(str(tmp_path / "Maildir"), recipient=ADDRESS_A)

    assert (result.fetched, result.stored, result.quarantined) == (3, 3, 1)
    assert len(md) == 0  # every message is committed, so none is left on the source
    by_subject = {m.subject: m for m in InboundMessage.objects.all()}
    assert by_subject["前"].status == InboundMessage.Status.PROCESSED
    assert by_subject["後"].status == InboundMessage.Status.PROCESSED
    refused = by_subject["boom"]
    assert refused.status == InboundMessage.Status.QUARANTINED
    assert "refused by the database" in refused.reason
    assert b"Subject: boom" in bytes(refused.raw)
    assert sorted(Inquiry.objects.values_list("ticket__title", flat=True)) == ["前", "後"]


def test_nul_and_undecodable_bytes_neither_block_storing_nor_processing(mailbox_a):
    raw = make_mail(subject="件名\x00です", body="本文\x00です").replace(
        b"Subject:", b"X-Note: \xff\xfe\x00\nSubject:", 1
    )
    (message,) = receive([raw])
    assert message.status == InboundMessage.Status.PROCESSED, message.reason
    assert message.subject == "件名です"
    assert message.inquiry.ticket.description == "本文です"
    assert bytes(message.raw) == raw


def test_a_reply_chain_within_one_batch_stays_on_one_ticket(mailbox_a, city_a):
    def mail(mid, sender="yamada@example.jp", parent=None):
        headers = {"In-Reply-To": f"<{parent}@example.jp>"} if parent else None
        return make_mail(sender=sender, message_id=f"<{mid}@example.jp>", headers=headers)

    receive(
        [
            mail("a"),
            mail("b", parent="a"),
            mail("c", parent="b"),  # names only b, itself a reply of this batch
            # Someone else citing a's Message-ID does not get into yamada's ticket.
            mail("x", sender="stranger@example.jp", parent="a"),
        ]
    )
    by_id = {m.message_id: m for m in InboundMessage.objects.all()}
    ticket = by_id["a@example.jp"].inquiry
    assert by_id["b@example.jp"].inquiry == ticket
    assert by_id["c@example.jp"].inquiry == ticket
    assert not by_id["c@example.jp"].created_inquiry
    assert by_id["x@example.jp"].created_inquiry
    assert by_id["x@example.jp"].inquiry != ticket
    assert FollowUp.objects.filter(ticket=ticket.ticket).count() == 3  # 受付 + two replies
