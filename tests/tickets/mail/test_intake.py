"""Inbound mail through the MTA pipe entry point: stored, processed once, routed per city."""

from __future__ import annotations

import io
import mailbox as stdlib_mailbox

import pytest
from django.core.management import call_command
from helpdesk.models import FollowUp

from tests.tickets.mail.conftest import ADDRESS_A, ADDRESS_B, deliver, make_mail
from tickets.mail.models import InboundMessage
from tickets.models import Channel, Inquiry

pytestmark = pytest.mark.django_db(transaction=False)


def test_new_mail_opens_an_email_inquiry_in_the_inbox_municipality(mailbox_a, city_a):
    message = deliver(make_mail(subject="返礼品について", body="いくらはいつ届きますか？\n"))
    assert message.status == InboundMessage.Status.PROCESSED
    inquiry = message.inquiry
    assert inquiry.municipality == city_a
    assert inquiry.channel == Channel.EMAIL
    assert inquiry.ticket.title == "返礼品について"
    assert inquiry.ticket.description == "いくらはいつ届きますか？"
    assert inquiry.ticket.submitter_email == "donor@example.jp"
    assert bytes(message.raw).startswith(b"From: donor@example.jp")


def test_the_same_bytes_twice_are_stored_and_processed_once(mailbox_a):
    raw = make_mail()
    first = deliver(raw)
    second = deliver(raw)
    assert first.pk == second.pk
    assert InboundMessage.objects.count() == 1
    assert Inquiry.objects.count() == 1


def test_the_same_message_id_redelivered_with_other_headers_is_a_duplicate(mailbox_a):
    raw = make_mail(message_id="<once@example.jp>")
    deliver(raw)
    again = deliver(b"Received: from relay2.example.jp\r\n" + raw)
    assert again.status == InboundMessage.Status.DUPLICATE
    assert Inquiry.objects.count() == 1
    assert InboundMessage.objects.count() == 2  # kept, not processed


def test_mail_to_two_city_inboxes_becomes_one_ticket_in_each(mailbox_a, mailbox_b, city_a, city_b):
    raw = make_mail(to=f"{ADDRESS_A}, {ADDRESS_B}")
    from tickets.mail.services import inbound

    messages = inbound.inbound_receive(raw=raw, source=InboundMessage.Source.PIPE)
    assert {m.inquiry.municipality for m in messages} == {city_a, city_b}


def test_the_envelope_recipient_decides_over_headers(mailbox_a, mailbox_b, city_b):
    message = deliver(make_mail(to=ADDRESS_A), recipient=ADDRESS_B)
    assert message.inquiry.municipality == city_b


def test_mail_to_an_unknown_inbox_is_quarantined_not_dropped(mailbox_a):
    message = deliver(make_mail(to="someone@elsewhere.example.jp"))
    assert message.status == InboundMessage.Status.QUARANTINED
    assert message.municipality is None
    assert "自治体が特定できません" in message.reason
    assert Inquiry.objects.count() == 0


def test_mail_without_sender_is_quarantined(mailbox_a):
    raw = make_mail().replace(b"From: donor@example.jp\n", b"")
    message = deliver(raw)
    assert message.status == InboundMessage.Status.QUARANTINED
    assert "差出人" in message.reason


def test_sender_rate_limit_quarantines_the_excess(mailbox_a, settings):
    settings.MAIL_RATE_LIMIT_PER_HOUR = 2
    results = [deliver(make_mail(body=f"{i}通目")) for i in range(3)]
    assert [m.status for m in results] == ["processed", "processed", "quarantined"]
    assert "受信制限" in results[2].reason
    # Another sender is not affected.
    assert deliver(make_mail(sender="other@example.jp")).status == "processed"


def test_ingest_email_command_reads_stdin(mailbox_a, monkeypatch):
    raw = make_mail(subject="コマンド経由")
    stdin = io.TextIOWrapper(io.BytesIO(raw))
    monkeypatch.setattr("sys.stdin", stdin)
    out = io.StringIO()
    call_command("ingest_email", "--recipient", ADDRESS_A, stdout=out)
    assert "processed" in out.getvalue()
    assert Inquiry.objects.get().ticket.title == "コマンド経由"


def test_ingest_email_maildir_removes_each_message_after_commit(mailbox_a, tmp_path):
    md = stdlib_mailbox.Maildir(tmp_path / "Maildir", create=True)
    for i in range(3):
        md.add(make_mail(subject=f"件名{i}", sender=f"d{i}@example.jp"))
    out = io.StringIO()
    call_command("ingest_email", "--maildir", str(tmp_path / "Maildir"), stdout=out)
    assert "stored=3" in out.getvalue()
    assert len(md) == 0
    assert sorted(Inquiry.objects.values_list("ticket__title", flat=True)) == [
        "件名0",
        "件名1",
        "件名2",
    ]


def test_a_reply_reopens_nothing_new_and_adds_a_followup(requester_reply):
    first, inquiry = requester_reply(message_id="<first@example.jp>")
    reply = deliver(
        make_mail(
            subject="Re: お問い合わせ",
            body="追記です。",
            headers={"In-Reply-To": "<first@example.jp>", "References": "<first@example.jp>"},
        )
    )
    assert reply.inquiry == inquiry
    assert not reply.created_inquiry
    assert FollowUp.objects.get(pk=reply.followup_id).comment == "追記です。"


def test_mailbox_command_configures_an_inbound_address(city_a, monkeypatch):
    from crm.models import MunicipalityEmailAddress
    from tickets.mail.models import Mailbox

    MunicipalityEmailAddress.objects.create(municipality=city_a, address=ADDRESS_A)
    monkeypatch.setenv("OTARU_IMAP_PASSWORD", "s3cret")
    call_command(
        "mail_mailbox",
        ADDRESS_A,
        "--protocol",
        "imap",
        "--host",
        "imap.example.jp",
        "--user",
        "furusato",
        "--password-env",
        "OTARU_IMAP_PASSWORD",
        "--charset",
        "iso-2022-jp",
        stdout=io.StringIO(),
    )
    box = Mailbox.objects.get()
    assert (box.municipality, box.protocol, box.password, box.outbound_charset) == (
        city_a,
        "imap",
        "s3cret",
        "iso-2022-jp",
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\xff\xfe garbage without headers",
        b"From: a@example.jp\r\nTo: furusato@otaru.example.jp\r\nContent-Type: multipart/mixed;"
        b' boundary="x"\r\n\r\n--x\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@@\r\n',
        b"From: a@example.jp\r\nTo: furusato@otaru.example.jp\r\nSubject: =?bogus-charset?B?gqA=?="
        b"\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\n\x82\xa0\x82\xa2\r\n",
    ],
)
def test_broken_mail_is_kept_and_never_crashes_intake(mailbox_a, raw):
    message = deliver(raw, recipient=ADDRESS_A)
    assert message.status in (InboundMessage.Status.PROCESSED, InboundMessage.Status.QUARANTINED)
    assert bytes(message.raw) == raw


def test_an_inbound_address_registered_in_capitals_receives_its_mail(city_a, monkeypatch):
    from crm.models import MunicipalityEmailAddress

    registered = MunicipalityEmailAddress.objects.create(
        municipality=city_a, address="INBOX@Example.LG.JP"
    )
    assert registered.address == "inbox@example.lg.jp"
    by_header = deliver(make_mail(to="Inbox+ref@example.lg.jp"))
    by_envelope = deliver(make_mail(subject="別件"), recipient="INBOX@EXAMPLE.LG.JP")
    for message in (by_header, by_envelope):
        assert message.status == InboundMessage.Status.PROCESSED, message.reason
        assert message.municipality == city_a
    # The management command finds the same address however it is typed.
    call_command("mail_mailbox", "Inbox@example.lg.jp", "--protocol", "imap", stdout=io.StringIO())
    assert registered.mailbox.protocol == "imap"


def test_inbound_addresses_stored_in_capitals_are_lower_cased_by_migration(city_a, city_b):
    import importlib

    from django.apps import apps

    from crm.models import MunicipalityEmailAddress

    migration = importlib.import_module("crm.migrations.0005_inbound_addresses_lower_case")
    # Rows as older code stored them (bulk_create skips the normalising save()).
    upper, twin, lower = MunicipalityEmailAddress.objects.bulk_create(
        [
            MunicipalityEmailAddress(municipality=city_a, address="INBOX@Example.LG.JP"),
            MunicipalityEmailAddress(municipality=city_b, address="Furusato@B.example.jp"),
            MunicipalityEmailAddress(municipality=city_b, address="furusato@b.example.jp"),
        ]
    )
    migration.lower_case_inbound_addresses(apps, None)
    stored = dict(MunicipalityEmailAddress.objects.values_list("pk", "address"))
    assert stored[upper.pk] == "inbox@example.lg.jp"
    # The lower-case twin already routes that mail: the other row is left as it was.
    assert (stored[twin.pk], stored[lower.pk]) == ("Furusato@B.example.jp", "furusato@b.example.jp")
    assert deliver(make_mail(to="inbox@example.lg.jp")).municipality == city_a


def test_an_address_registered_again_in_other_case_is_refused_as_a_duplicate(city_a):
    from django.core.exceptions import ValidationError

    from crm.models import MunicipalityEmailAddress

    MunicipalityEmailAddress.objects.create(municipality=city_a, address="inbox@example.lg.jp")
    again = MunicipalityEmailAddress(municipality=city_a, address="INBOX@example.lg.jp")
    with pytest.raises(ValidationError, match="address"):
        again.full_clean()
