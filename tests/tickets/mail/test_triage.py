"""Noise, bounces, records named in the mail, category rules and attachments."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core import mail as django_mail

from tests.factories import (
    DonationFactory,
    DonorEmailFactory,
    DonorFactory,
    ShipmentFactory,
    tracking_with_check_digit,
)
from tests.tickets.mail.conftest import ADDRESS_A, deliver, make_mail
from tickets import services as ticket_services
from tickets.mail.models import (
    FlaggedAddress,
    InboundAttachment,
    InboundMessage,
    MunicipalityMailSettings,
    OutboundMessage,
)
from tickets.mail.services import configuration
from tickets.models import Inquiry

# --- Auto-replies and bounces -----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers,subject",
    [
        ({"Auto-Submitted": "auto-replied"}, "Re: お問い合わせ"),
        ({"X-Autoreply": "yes"}, "Re: お問い合わせ"),
        ({"Precedence": "bulk"}, "メルマガ"),
        ({"Precedence": "junk"}, "広告"),
        ({}, "【自動返信】お問い合わせありがとうございます"),
        ({}, "不在のお知らせ（12/28まで）"),
        ({}, "Out of Office: Re: 返礼品"),
    ],
)
def test_auto_replies_are_kept_but_neither_answered_nor_opened(
    mailbox_a, headers, subject, django_capture_on_commit_callbacks, mailoutbox
):
    MunicipalityMailSettings.objects.create(
        municipality=mailbox_a.municipality, acknowledgement_enabled=True
    )
    with django_capture_on_commit_callbacks(execute=True):
        message = deliver(make_mail(subject=subject, headers=headers))
    assert message.status == InboundMessage.Status.AUTO_REPLY
    assert message.reason
    assert Inquiry.objects.count() == 0
    assert mailoutbox == []


def test_auto_reply_to_our_reply_does_not_land_on_the_ticket(
    requester_reply, agent_a, django_capture_on_commit_callbacks
):
    _, inquiry = requester_reply()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="回答です。")
    out = OutboundMessage.objects.get()
    message = deliver(
        make_mail(
            subject="自動応答: " + out.subject,
            headers={"Auto-Submitted": "auto-replied", "In-Reply-To": f"<{out.message_id}>"},
        )
    )
    assert message.status == InboundMessage.Status.AUTO_REPLY
    assert message.inquiry is None
    assert inquiry.ticket.followup_set.count() == 2


def _dsn(original_message_id: str, failed: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.otaru.example.jp\r\n"
        f"To: {ADDRESS_A}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn1@mx.otaru.example.jp>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        "--R\r\nContent-Type: text/plain\r\n\r\nThis is the mail system.\r\n"
        "--R\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.otaru.example.jp\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
        "--R\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {ADDRESS_A}\r\nTo: {failed}\r\nMessage-ID: <{original_message_id}>\r\n"
        "--R--\r\n"
    ).encode()


def test_bounce_is_tied_to_our_mail_and_flags_the_address(
    requester_reply, agent_a, django_capture_on_commit_callbacks
):
    _, inquiry = requester_reply(sender="typo@example.jp")
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="回答です。")
    out = OutboundMessage.objects.get()
    message = deliver(_dsn(out.message_id, "typo@example.jp"))
    assert message.status == InboundMessage.Status.BOUNCE
    out.refresh_from_db()
    assert out.bounced_at is not None and "5.1.1" in out.last_error
    flag = FlaggedAddress.objects.get(address="typo@example.jp")
    assert flag.municipality == inquiry.municipality and flag.bounce_count == 1
    assert Inquiry.objects.count() == 1


def test_agents_see_the_bounce_on_the_ticket_and_the_donor_page(
    requester_reply, agent_a, city_a, login, django_capture_on_commit_callbacks
):
    donor = DonorFactory(municipality=city_a)
    DonorEmailFactory(donor=donor, address="typo@example.jp")
    _, inquiry = requester_reply(sender="typo@example.jp")
    client = login(agent_a)
    ticket_page = f"/tickets/{inquiry.pk}/"
    assert "不達" not in client.get(ticket_page).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="回答です。")
    deliver(_dsn(OutboundMessage.objects.get().message_id, "typo@example.jp"))

    for page in (ticket_page, f"/donors/{donor.pk}/"):
        html = client.get(page).content.decode()
        assert "不達 1回" in html, page
        assert "550 5.1.1 User unknown" in html  # the reason, on hover


def test_bounce_of_another_citys_mail_is_not_tied_to_it(
    requester_reply, agent_a, mailbox_b, django_capture_on_commit_callbacks
):
    _, inquiry = requester_reply()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="回答です。")
    out = OutboundMessage.objects.get()
    raw = _dsn(out.message_id, "donor@example.jp").replace(ADDRESS_A.encode(), b"x@y.jp")
    message = deliver(raw, recipient=mailbox_b.address.address)
    out.refresh_from_db()
    assert message.status == InboundMessage.Status.BOUNCE
    assert out.bounced_at is None


# --- Records named in the mail -----------------------------------------------------------------


def test_sender_order_number_and_tracking_number_link_records_of_this_city_only(
    mailbox_a, city_a, city_b
):
    donor = DonorFactory(municipality=city_a)
    DonorEmailFactory(donor=donor, address="Yamada@Example.jp")
    donation = DonationFactory(donor=donor, portal_order_number="123456-20241201-00000042")
    shipment = ShipmentFactory(donation=DonationFactory(donor=donor))
    other_city = DonationFactory(
        donor=DonorFactory(municipality=city_b), portal_order_number="123456-20241201-00000077"
    )
    tracking = shipment.tracking_number
    body = (
        f"受付番号 {donation.portal_order_number} の件です。\n"
        f"伝票番号 {tracking[:4]}-{tracking[4:8]}-{tracking[8:]} も届いていません。\n"
        f"ついでに {other_city.portal_order_number} も。"
    )
    message = deliver(make_mail(sender="yamada@example.jp", body=body))
    inquiry = message.inquiry
    assert inquiry.donor == donor
    assert set(inquiry.donations.all()) == {donation, shipment.donation}
    assert list(inquiry.shipments.all()) == [shipment]


def test_a_tracking_number_with_a_wrong_check_digit_links_nothing(mailbox_a, city_a):
    shipment = ShipmentFactory(donation=DonationFactory(donor=DonorFactory(municipality=city_a)))
    body11 = shipment.tracking_number[:11]
    wrong = body11 + str((int(shipment.tracking_number[11]) + 1) % 7)
    assert wrong != tracking_with_check_digit(body11)
    message = deliver(make_mail(body=f"伝票番号 {wrong}"))
    assert not message.inquiry.shipments.exists()


def test_external_id_links_its_donation(mailbox_a, city_a):
    donation = DonationFactory(donor=DonorFactory(municipality=city_a), external_id="F000012345")
    message = deliver(make_mail(body="外部管理番号：Ｆ００００１２３４５"))  # full-width as typed
    assert list(message.inquiry.donations.all()) == [donation]


def test_phone_number_in_the_text_finds_the_donor(mailbox_a, city_a):
    from tests.factories import DonorPhoneFactory

    phone = DonorPhoneFactory(donor=DonorFactory(municipality=city_a), e164="+819012345678")
    message = deliver(make_mail(body="折り返しは 090-1234-5678 までお願いします。"))
    assert message.inquiry.donor == phone.donor


# --- Category rules ---------------------------------------------------------------------------


def test_supervisor_rules_suggest_category_and_severity(mailbox_a, city_a, supervisor):
    configuration.triage_rules_add_defaults(actor=supervisor, municipality=city_a)
    message = deliver(make_mail(subject="返礼品", body="届いたメロンにカビが生えていました。"))
    assert message.inquiry.category.code == "damaged"
    assert message.inquiry.severity == "high"
    assert "破損" in message.reason


def test_rules_of_another_city_do_not_apply(mailbox_a, city_b, supervisor):
    configuration.triage_rules_add_defaults(actor=supervisor, municipality=city_b)
    message = deliver(make_mail(body="荷物が届かないです。"))
    assert message.inquiry.category is None
    assert message.inquiry.severity == "normal"


def test_halfwidth_keywords_match_fullwidth_rules(mailbox_a, city_a, supervisor):
    configuration.triage_rules_add_defaults(actor=supervisor, municipality=city_a)
    message = deliver(make_mail(body="ｶﾆが届かない"))
    assert message.inquiry.category.code == "shipping_status"


# --- Acknowledgement --------------------------------------------------------------------------


def test_acknowledgement_is_off_by_default(mailbox_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        deliver(make_mail())
    assert django_mail.outbox == []


def test_acknowledgement_uses_the_city_template_when_enabled(
    mailbox_a, city_a, django_capture_on_commit_callbacks
):
    MunicipalityMailSettings.objects.create(
        municipality=city_a,
        acknowledgement_enabled=True,
        acknowledgement_subject="【受付】{subject}",
        acknowledgement_body="受付番号 {ticket_id} で承りました。{unknown}",
    )
    with django_capture_on_commit_callbacks(execute=True):
        message = deliver(make_mail(subject="配送について"))
    (sent,) = django_mail.outbox
    raw = sent.message().as_bytes()
    assert sent.recipients() == ["donor@example.jp"]
    assert b"Auto-Submitted: auto-replied" in raw
    from tickets.mail.decoding import parse

    parsed = parse(raw)
    assert parsed.subject.startswith("【受付】配送について [#")
    assert parsed.body.strip() == f"受付番号 {message.inquiry.pk} で承りました。{{unknown}}"


# --- Attachments -----------------------------------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200 + b"\xff\xd9"
PE = b"MZ\x90\x00" + b"\x00" * 200


def _with_attachments(*files: tuple[str, str, bytes], body: str = "添付します。") -> bytes:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = "donor@example.jp"
    msg["To"] = ADDRESS_A
    msg["Subject"] = "添付"
    msg["Message-ID"] = "<att@example.jp>"
    msg.set_content(body)
    for name, ctype, data in files:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def _zip(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def test_photos_are_kept_and_hostile_files_refused_by_their_bytes(mailbox_a, settings):
    settings.MAIL_MAX_ATTACHMENT_BYTES = 1000
    message = deliver(
        _with_attachments(
            ("破損写真.jpg", "image/jpeg", JPEG),
            ("写真.jpg", "image/jpeg", PE),  # an executable named as a photo
            ("invoice.pdf.exe", "application/octet-stream", JPEG),
            ("書類.zip", "application/zip", _zip("請求書.pdf.scr", b"x")),
            ("大きい写真.jpg", "image/jpeg", JPEG + b"\x00" * 2000),
        )
    )
    assert message.status == InboundMessage.Status.PROCESSED
    rows = {a.filename: a for a in InboundAttachment.objects.filter(message=message)}
    assert rows["破損写真.jpg"].status == "kept" and rows["破損写真.jpg"].is_image
    assert bytes(rows["破損写真.jpg"].data) == JPEG
    assert rows["写真.jpg"].status == "refused" and "実行形式" in rows["写真.jpg"].refused_reason
    assert rows["invoice.pdf.exe"].status == "refused"
    assert rows["書類.zip"].status == "refused"
    assert "サイズ上限" in rows["大きい写真.jpg"].refused_reason
    assert all(bytes(r.data) == b"" for r in rows.values() if r.status == "refused")
    assert all(r.inquiry == message.inquiry for r in rows.values())


def test_my_number_images_are_restricted(mailbox_a):
    message = deliver(
        _with_attachments(
            ("mynumber_card.jpg", "image/jpeg", JPEG),
            ("IMG_0001.jpg", "image/jpeg", JPEG),
        )
    )
    rows = {a.filename: a.restricted for a in InboundAttachment.objects.filter(message=message)}
    assert rows == {"mynumber_card.jpg": True, "IMG_0001.jpg": False}


def test_my_number_hint_in_the_text_restricts_the_images(mailbox_a):
    message = deliver(
        _with_attachments(
            ("IMG_0002.jpg", "image/jpeg", JPEG),
            body="ワンストップ特例の申請で、マイナンバーカードの写しを送ります。",
        )
    )
    assert InboundAttachment.objects.get(message=message).restricted
