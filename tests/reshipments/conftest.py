"""Re-shipment fixtures: a damaged-gift ticket that arrived by mail with a photo, its donor and
shipment, and the people who request and decide."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.utils import timezone

from crm.models import MunicipalityEmailAddress, User
from tests.factories import (
    DonorEmailFactory,
    DonorFactory,
    DonorPhoneFactory,
    GiftItemFactory,
    ShipmentFactory,
    UserFactory,
)
from tickets import services as ticket_services
from tickets.mail.models import InboundMessage, Mailbox
from tickets.mail.services import inbound

DONOR_EMAIL = "hanako@example.jp"
CITY_A_ADDRESS = "furusato@otaru.example.jp"
# A 1×1 PNG: what a donor's photo of the broken box is, as far as the intake can tell.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def damaged_gift_mail(*, to: str = CITY_A_ADDRESS, sender: str = DONOR_EMAIL) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"山田 花子 <{sender}>"
    msg["To"] = to
    msg["Subject"] = "返礼品が破損して届きました"
    msg["Date"] = format_datetime(timezone.now())
    msg["Message-ID"] = make_msgid(domain="example.jp")
    msg.set_content("いくらの瓶が割れて届きました。写真を添付します。")
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="broken.png")
    return msg.as_bytes()


@pytest.fixture
def supervisor_a(city_a):
    return UserFactory(username="sv_a", role=User.Role.SUPERVISOR, municipalities=[city_a])


@pytest.fixture
def donor_a(city_a):
    donor = DonorFactory(municipality=city_a, name="山田 花子")
    DonorPhoneFactory(donor=donor, e164="+819012345678")
    DonorEmailFactory(donor=donor, address=DONOR_EMAIL)
    return donor


@pytest.fixture
def shipment_a(donor_a):
    return ShipmentFactory(
        donation__donor=donor_a,
        gift_item__municipality=donor_a.municipality,
        ship_to_name="山田 花子",
        ship_to_phone="+819012345678",
    )


@pytest.fixture
def substitute_gift(city_a, shipment_a):
    return GiftItemFactory(
        municipality=city_a, provider=shipment_a.gift_item.provider, name="北海道産 ほたて 1kg"
    )


@pytest.fixture
def mailbox_a(city_a):
    address = MunicipalityEmailAddress.objects.create(municipality=city_a, address=CITY_A_ADDRESS)
    return Mailbox.objects.create(address=address, display_name="小樽市ふるさと納税")


@pytest.fixture
def damaged_ticket(mailbox_a, supervisor_a, shipment_a):
    """The donor's mail with a photo opened the ticket; the shipment is linked to it."""
    (message,) = inbound.inbound_receive(raw=damaged_gift_mail(), source=InboundMessage.Source.PIPE)
    assert message.status == InboundMessage.Status.PROCESSED, message.reason
    inquiry = message.inquiry
    ticket_services.inquiry_link_records(
        actor=supervisor_a,
        inquiry=inquiry,
        donor=shipment_a.donation.donor,
        donations=[shipment_a.donation],
        shipments=[shipment_a],
    )
    return inquiry
