"""Demo mail for ``manage.py seed_demo``: triage rules and inbound mail through the real intake.

Each message is built as a Japanese mail client would send it (ISO-2022-JP, Shift_JIS or
UTF-8), stored with ``inbound_store`` and processed with ``inbound_process``, as mail piped from
the MTA is. One is a follow-up that threads onto its ticket, one an out-of-office auto-reply,
and one is malformed and stays in quarantine for a supervisor to look at.
"""

from __future__ import annotations

import base64
import datetime
import random
from email.header import Header
from email.utils import format_datetime
from typing import Any

from crm.models import DonorEmail, Municipality, MunicipalityEmailAddress, User
from demo.tickets import TOKYO, DemoClock, demo_now, office_moment, staff_for
from donations_sync.models import Shipment
from tickets import services as ticket_services
from tickets.mail.models import InboundMessage
from tickets.mail.services import configuration, inbound


def _address_header(name: str, address: str, charset: str) -> str:
    return f"{Header(name, charset).encode()} <{address}>"


def build_mail(
    *,
    charset: str,
    from_name: str,
    from_address: str,
    to: str,
    subject: str,
    body: str,
    at: datetime.datetime,
    message_id: str,
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """Raw bytes the way common Japanese mail clients encode them for ``charset``.

    Like those clients, falls back to UTF-8 when a character has no place in the legacy charset
    (a donor's 﨑 or 髙 is outside JIS X 0208, so outside ISO-2022-JP and Shift_JIS headers).
    """
    codecs = {"iso-2022-jp": ("iso2022_jp", "iso2022_jp"), "shift_jis": ("cp932", "shift_jis")}
    if charset in codecs:
        body_codec, header_codec = codecs[charset]
        try:
            body.encode(body_codec)
            (from_name + subject).encode(header_codec)
        except UnicodeEncodeError:
            charset = "utf-8"
    if charset == "iso-2022-jp":
        encoded, transfer = body.encode("iso2022_jp"), "7bit"
    elif charset == "shift_jis":
        encoded, transfer = body.encode("cp932"), "8bit"
    else:
        encoded, transfer = base64.encodebytes(body.encode("utf-8")), "base64"
    declared = {"iso-2022-jp": "ISO-2022-JP", "shift_jis": "Shift_JIS"}.get(charset, "UTF-8")
    header_charset = "iso-2022-jp" if charset == "iso-2022-jp" else "utf-8"
    if charset == "shift_jis":
        header_charset = "shift_jis"
    lines = [
        f"From: {_address_header(from_name, from_address, header_charset)}",
        f"To: {to}",
        f"Subject: {Header(subject, header_charset).encode()}",
        f"Date: {format_datetime(at.astimezone(TOKYO))}",
        f"Message-ID: {message_id}",
        *(f"{k}: {v}" for k, v in extra_headers),
        "MIME-Version: 1.0",
        f"Content-Type: text/plain; charset={declared}",
        f"Content-Transfer-Encoding: {transfer}",
    ]
    head = "\r\n".join(lines).encode("ascii")
    return head + b"\r\n\r\n" + encoded.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _message_id(rng: random.Random, domain: str) -> str:
    return f"<{rng.randrange(10**12):012d}.{rng.randrange(10**6):06d}@{domain}>"


def _receive(
    raw: bytes, *, municipality: Municipality, recipient: str
) -> tuple[InboundMessage, bool]:
    message, created = inbound.inbound_store(
        raw=raw,
        source=InboundMessage.Source.PIPE,
        municipality=municipality,
        recipient=recipient,
    )
    return inbound.inbound_process(message_pk=message.pk), created


NEW_MAILS = [
    (
        "{gift}の箱が潰れていました",
        "{city} ふるさと納税ご担当者様\n\n"
        "先日寄附をした{name}です。\n本日返礼品の「{gift}」が届きましたが、"
        "箱が潰れていて中身が一部割れていました。\n写真もありますので、対応をお願いします。\n\n"
        "受付番号: {order}\n\n{name}\n",
    ),
    (
        "寄附金受領証明書が届いていません",
        "お世話になります。{name}と申します。\n\n"
        "{month}に寄附しましたが、受領証明書がまだ届いていません。\n"
        "確定申告に使いたいので、発送状況を教えてください。\n\n受付番号: {order}\n",
    ),
    (
        "ワンストップ特例申請書の送付先について",
        "{city}ふるさと納税係 御中\n\n"
        "ワンストップ特例の申請書はどちらに送ればよいでしょうか。\n"
        "オンライン申請にも対応していますか。\n\n{name}\n",
    ),
]

# (from name, address, subject, body) of an out-of-office reply to the city's own mail.
AUTO_REPLY = (
    "不在のお知らせ（自動応答）",
    "このメールは自動応答です。\n12月28日から1月5日まで不在にしております。"
    "ご返信は1月6日以降となります。\n",
)


def seed_demo(*, rng: random.Random, today: datetime.date, stdout: Any) -> dict[str, int]:
    end = demo_now(today)
    clock = DemoClock(end)
    counts = {"triage_rules": 0, "mail_messages": 0, "mail_quarantined": 0}
    with clock.running():
        for index, municipality in enumerate(Municipality.objects.order_by("code")):
            address = (
                MunicipalityEmailAddress.objects.filter(municipality=municipality)
                .order_by("id")
                .first()
            )
            if address is None:
                continue
            agents, supervisors = staff_for(municipality)
            supervisor = supervisors[0] if supervisors else None
            if supervisor is None:
                supervisor = User.objects.filter(role=User.Role.OPERATOR_ADMIN).first()
            if supervisor is not None:
                clock.set(end - datetime.timedelta(days=30))
                counts["triage_rules"] += configuration.triage_rules_add_defaults(
                    actor=supervisor, municipality=municipality
                )
            senders = list(
                DonorEmail.objects.filter(municipality=municipality)
                .select_related("donor")
                .order_by("id")[:200]
            )
            rng.shuffle(senders)
            charsets = ["iso-2022-jp", "shift_jis", "utf-8"]
            first: tuple[InboundMessage, bytes, str, DonorEmail] | None = None
            for n, (subject, template) in enumerate(NEW_MAILS):
                if not senders:
                    break
                sender = senders.pop()
                donation = sender.donor.donations.order_by("-donated_at").first()
                shipment = None
                if n == 0:
                    # A damaged gift is something perishable that was delivered.
                    shipment = (
                        Shipment.objects.filter(
                            donation__donor__emails__in=senders + [sender],
                            status=Shipment.Status.DELIVERED,
                            gift_item__perishable=True,
                        )
                        .select_related("donation__donor", "gift_item")
                        .order_by("id")
                        .first()
                    )
                    if shipment is not None:
                        donation = shipment.donation
                        sender = next(
                            s for s in [*senders, sender] if s.donor_id == donation.donor_id
                        )
                elif donation is not None:
                    shipment = donation.shipments.order_by("id").first()
                day = end.date() - datetime.timedelta(days=rng.randint(0, 6))
                at = min(office_moment(rng, day, 7, 23), end - datetime.timedelta(minutes=30))
                clock.set(at + datetime.timedelta(minutes=rng.randint(1, 4)))
                values = {
                    "city": municipality.name,
                    "name": sender.donor.name,
                    "gift": shipment.gift_item.name if shipment else "返礼品",
                    "order": (donation.portal_order_number or donation.external_id)
                    if donation
                    else "不明",
                    "month": f"{donation.donated_at.astimezone(TOKYO):%m月}"
                    if donation
                    else "先月",
                }
                message_id = _message_id(rng, sender.address.partition("@")[2])
                raw = build_mail(
                    charset=charsets[(index + n) % 3],
                    from_name=sender.donor.name,
                    from_address=sender.address,
                    to=address.address,
                    subject=subject.format(**values),
                    body=template.format(**values),
                    at=at,
                    message_id=message_id,
                )
                message, _ = _receive(raw, municipality=municipality, recipient=address.address)
                counts["mail_messages"] += 1
                if message.inquiry_id and agents:
                    clock.advance(minutes=rng.randint(10, 90))
                    if clock.at < end:
                        ticket_services.inquiry_assign(
                            actor=supervisor or agents[0],
                            inquiry=message.inquiry,
                            assignee=rng.choice(agents),
                        )
                if first is None:
                    first = (message, raw, message_id, sender)

            if first is None:
                continue
            message, _, first_id, sender = first
            special = index % 3
            clock.advance(minutes=rng.randint(20, 120))
            clock.set(min(clock.at, end - datetime.timedelta(minutes=5)))
            if special == 0:
                # The donor writes again, replying to their own mail: joins the same ticket.
                raw = build_mail(
                    charset="iso-2022-jp",
                    from_name=sender.donor.name,
                    from_address=sender.address,
                    to=address.address,
                    subject=f"Re: {message.subject}",
                    body=(
                        "追記です。\n昼間は仕事で電話に出られないため、"
                        "ご連絡はメールでお願いいたします。\n"
                    ),
                    at=clock.at,
                    message_id=_message_id(rng, sender.address.partition("@")[2]),
                    extra_headers=(("In-Reply-To", first_id), ("References", first_id)),
                )
            elif special == 1:
                raw = build_mail(
                    charset="utf-8",
                    from_name=sender.donor.name,
                    from_address=sender.address,
                    to=address.address,
                    subject=AUTO_REPLY[0],
                    body=AUTO_REPLY[1],
                    at=clock.at,
                    message_id=_message_id(rng, sender.address.partition("@")[2]),
                    extra_headers=(("Auto-Submitted", "auto-replied"),),
                )
            else:
                # A broken mail as some old clients send it: no From line, a body cut off.
                raw = (
                    f"To: {address.address}\r\n"
                    "Subject: =?ISO-2022-JP?B?GyRCSlZOaUlKGyhC\r\n"
                    f"Date: {format_datetime(clock.at.astimezone(TOKYO))}\r\n"
                    "Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
                ).encode("ascii") + "返礼品について".encode("iso2022_jp")[:9]
            result, _ = _receive(raw, municipality=municipality, recipient=address.address)
            counts["mail_messages"] += 1
            if result.status == InboundMessage.Status.QUARANTINED:
                counts["mail_quarantined"] += 1
    return counts
