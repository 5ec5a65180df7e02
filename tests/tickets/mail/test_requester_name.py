"""The sender's display name is the requester's name: kept on the inquiry, shown beside the
address on the ticket, in the lists and the console, and found by search."""

from __future__ import annotations

import base64
import html

import pytest
from django.urls import reverse

from tests.tickets.mail.conftest import ADDRESS_A, deliver, make_mail
from tickets import services as ticket_services
from tickets.mail import charsets
from tickets.mail.models import InboundMessage
from tickets.mail.services import inbound

pytestmark = pytest.mark.django_db(transaction=False)


def encoded_from(encoded_name: bytes, address: str) -> bytes:
    word = base64.b64encode(encoded_name).decode()
    return f"From: =?ISO-2022-JP?B?{word}?= <{address}>".encode()


def mail_from(name_bytes: bytes, address: str, **kwargs) -> bytes:
    raw = make_mail(sender="placeholder@example.jp", **kwargs)
    return raw.replace(b"From: placeholder@example.jp", encoded_from(name_bytes, address), 1)


def test_display_name_is_kept_and_shown_with_the_address(login, mailbox_a, agent_a):
    # 髙 and 﨑 exist only in CP932's extensions, as Japanese mailers write ISO-2022-JP.
    raw = mail_from(charsets.encode_iso2022jp("髙﨑 花子"), "Hanako@Example.jp", subject="寄附の件")
    message = deliver(raw)
    assert message.status == InboundMessage.Status.PROCESSED, message.reason
    inquiry = message.inquiry
    assert inquiry.requester_name == "髙﨑 花子"
    shown = "髙﨑 花子 <hanako@example.jp>"
    assert inquiry.requester_display == shown

    ticket_services.inquiry_assign(actor=agent_a, inquiry=inquiry, assignee=agent_a)
    client = login(agent_a)
    for url in (
        reverse("ticket_detail", args=[inquiry.pk]),
        reverse("ticket_list"),
        reverse("console"),
    ):
        page = html.unescape(client.get(url).content.decode())
        assert shown in page, url
    # Searching for the name finds the ticket, in the ticket list and the console's search box.
    listed = client.get(reverse("ticket_list"), {"q": "髙﨑"})
    assert [i.pk for i in listed.context["page"]] == [inquiry.pk]
    hits = html.unescape(client.get(reverse("console_search"), {"q": "髙﨑 花子"}).content.decode())
    assert f"#{inquiry.pk} 寄附の件" in hits and shown in hits


def test_batch_intake_keeps_each_senders_name(mailbox_a):
    raws = [
        # JIS X 0213 plane 1 and plane 2 characters (ISO-2022-JP-2004).
        mail_from("森鷗外".encode("iso2022_jp_2004"), "ogai@example.jp", subject="一"),
        mail_from("𩸽野 剝子".encode("iso2022_jp_2004"), "hokke@example.jp", subject="二"),
        make_mail(sender="noname@example.jp", subject="三"),
    ]
    per_raw = inbound.inbound_receive_many(
        raws=raws, source=InboundMessage.Source.MAILDIR, recipient=ADDRESS_A
    )
    inquiries = [InboundMessage.objects.get(pk=m[0].pk).inquiry for m in per_raw]
    assert [i.requester_name for i in inquiries] == ["森鷗外", "𩸽野 剝子", ""]
    assert [i.requester_display for i in inquiries] == [
        "森鷗外 <ogai@example.jp>",
        "𩸽野 剝子 <hokke@example.jp>",
        "noname@example.jp",
    ]


def test_inquiries_opened_before_names_were_kept_get_them_from_the_stored_mail(mailbox_a, agent_a):
    import importlib

    from django.apps import apps

    from tickets.models import Inquiry
    from tickets.search import search_inquiries

    named = deliver(mail_from(charsets.encode_iso2022jp("髙﨑 花子"), "hanako@example.jp"))
    unnamed = deliver(make_mail(sender="plain@example.jp", subject="名前なし"))
    # As older code left them: no name, and a search text without it.
    Inquiry.objects.update(requester_name="", search_text="")
    migration = importlib.import_module(
        "tickets.mail.migrations.0003_requester_names_from_stored_mail"
    )
    migration.requester_names_from_stored_mail(apps, None)
    assert Inquiry.objects.get(pk=named.inquiry_id).requester_name == "髙﨑 花子"
    assert Inquiry.objects.get(pk=unnamed.inquiry_id).requester_name == ""
    found = search_inquiries(Inquiry.objects.all(), agent_a, "髙﨑")
    assert list(found.values_list("pk", flat=True)) == [named.inquiry_id]
