"""Two cities with a little of everything: donors, gifts, tickets with attachments, mail,
calls, knowledge, import files, access logs, audit rows and Redis keys."""

from __future__ import annotations

import datetime

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.utils import timezone
from helpdesk.models import FollowUp, FollowUpAttachment

from crm.audit import audit_record
from crm.models import Municipality, MunicipalityEmailAddress, PersonalDataAccess, User
from crm.services import personal_data_access_record
from donations_sync.models import ImportRun
from knowledge.models import Article, CannedReply
from telephony.models import AgentPresence, Call, CallEvent
from tests.factories import (
    CarrierFactory,
    DonorEmailFactory,
    DonorPhoneFactory,
    MunicipalityPhoneNumberFactory,
    ShipmentFactory,
    UserFactory,
)
from tickets import services as ticket_services
from tickets.consumers import group_name as presence_group
from tickets.live import console_group
from tickets.mail.models import (
    InboundAttachment,
    InboundMessage,
    Mailbox,
    OutboundMessage,
)

# Not in CP932: 𠮷 (U+20BB7) and 鷗 (U+9DD7); 〜 (WAVE DASH) has a CP932 twin (～).
ODD_NAME = "𠮷田 鷗外"
RAW_MAIL = (
    "From: =?UTF-8?B?5aSP55uu?= <donor@example.jp>\r\nTo: city@example.jp\r\n"
    "Subject: test\r\nMessage-ID: <m1@example.jp>\r\n\r\n本文です〜\r\n"
).encode()


def fill_city(city: Municipality, *, tag: str, rich: bool = True) -> dict:
    carrier = CarrierFactory(code=f"carrier-{tag}")
    shipment = ShipmentFactory(
        municipality=city,
        donation__municipality=city,
        donation__donor__municipality=city,
        donation__donor__name=ODD_NAME if rich else f"寄附 {tag}",
        donation__donor__address="東京都千代田区1〜2",
        gift_item__municipality=city,
        gift_item__provider__municipality=city,
        carrier=carrier,
    )
    donor = shipment.donation.donor
    DonorPhoneFactory(donor=donor, municipality=city, e164=f"+8190{city.pk:04d}1111")
    DonorEmailFactory(donor=donor, municipality=city, address=f"donor-{tag}@example.jp")
    MunicipalityPhoneNumberFactory(municipality=city, e164=f"+8150{city.pk:04d}0000")
    agent = UserFactory(role=User.Role.AGENT, municipalities=[city])
    inquiry = ticket_services.inquiry_open(
        actor=agent,
        municipality=city,
        channel="email",
        title=f"件名 {tag}",
        description=f"{donor.name} からの問合せ",
        donor=donor,
        shipments=[shipment],
        submitter_email=f"donor-{tag}@example.jp",
    )
    followup = FollowUp.objects.filter(ticket_id=inquiry.pk).first()
    attachment = FollowUpAttachment(followup=followup, filename="見積.txt", mime_type="text/plain")
    attachment.file.save("見積.txt", ContentFile(f"添付 {tag}".encode()), save=False)
    attachment.size = attachment.file.size
    attachment.save()
    message = InboundMessage.objects.create(
        municipality=city,
        source="pipe",
        raw=RAW_MAIL,
        content_hash=f"{tag}".ljust(64, "0"),
        from_address="donor@example.jp",
        subject="test",
        status="processed",
        inquiry=inquiry,
    )
    InboundAttachment.objects.create(
        message=message,
        municipality=city,
        inquiry=inquiry,
        filename="写真.jpg",
        size=4,
        data=b"\xff\xd8\xff\xe0",
        status="kept",
    )
    OutboundMessage.objects.create(
        municipality=city,
        inquiry=inquiry,
        kind="reply",
        message_id=f"<out-{tag}@example.jp>",
        from_address="city@example.jp",
        to_address="donor@example.jp",
        subject="Re: test",
        body="返信",
        status="sent",
    )
    call = Call.objects.create(
        municipality=city,
        call_sid=f"CA{tag}",
        from_e164=f"+8190{city.pk:04d}1111",
        offered_at=timezone.now() - datetime.timedelta(days=400),
        recording_sid=f"RE{tag}",
        recording_url=f"https://api.twilio.com/recordings/RE{tag}",
        recording_seconds=42,
        inquiry=inquiry,
    )
    CallEvent.objects.create(
        call=call, call_sid=call.call_sid, event="initiated", at=timezone.now()
    )
    AgentPresence.objects.update_or_create(
        user=agent, defaults={"state": "on_call", "since": timezone.now(), "current_call": call}
    )
    CannedReply.objects.create(municipality=city, title=f"定型 {tag}", body="本文")
    Article.objects.create(municipality=city, title=f"FAQ {tag}", body="本文")
    run = ImportRun(municipality=city, style="choice", mapping={}, original_name="donors.csv")
    run.raw_file.save("donors.csv", ContentFile(f"氏名\n{tag}\n".encode()), save=False)
    run.save()
    personal_data_access_record(
        user=agent, action="view", record_type="donor", record_id=donor.pk, municipality_id=city.pk
    )
    audit_record(action="presence_reset", request=None, user=agent, municipality_id=city.pk)
    official = UserFactory(
        username=f"official-{tag}", role=User.Role.CITY_OFFICIAL, municipalities=[city]
    )
    # Live state in Redis: the console group, a ticket's presence group, a mailbox poll lock.
    layer = get_channel_layer()
    async_to_sync(layer.group_add)(console_group(city.pk), "specific.test!abc")
    async_to_sync(layer.group_add)(presence_group(inquiry.pk), "specific.test!abc")
    address = MunicipalityEmailAddress.objects.create(
        municipality=city, address=f"furusato-{tag}@city.example.jp"
    )
    mailbox = Mailbox.objects.create(address=address, municipality=city, password="secret-pw")
    cache.add(f"mail:poll:{mailbox.pk}", "1", timeout=600)
    return {
        "donor": donor,
        "inquiry": inquiry,
        "attachment_file": attachment.file.name,
        "import_file": run.raw_file.name,
        "call": call,
        "agent": agent,
        "official": official,
        "pda": PersonalDataAccess.objects.filter(municipality=city).count(),
        "mailbox": mailbox.pk,
    }
