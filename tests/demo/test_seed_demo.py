"""The synthetic dataset: what every record of the demo and of the operator-scale load must satisfy."""

from __future__ import annotations

import datetime
import random
import re
from io import StringIO

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count, F
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm import normalize
from crm.models import (
    Carrier,
    Donor,
    DonorEmail,
    DonorPhone,
    Municipality,
    MunicipalityPhoneNumber,
    User,
)
from demo import data, scale
from demo.people import PersonMaker
from demo.plan import Catalogue, Planner
from demo.users import DEMO_LOGINS
from donations_sync.models import Donation, GiftItem, Shipment

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2024, 12, 16)
ORDER_NUMBER_FORMATS = {
    "rakuten": r"\d{6}-\d{8}-\d{8}",
    "choice": r"\d{16}",
    "satofull": r"S\d{6}-\d{7}",
    "furunavi": r"FN\d{14}",
    "ana": r"ANA-\d{8}-\d{6}",
    "jre": r"JRE\d{11}",
    "aupay": r"AU\d{14}",
    "direct": r"",
}


def assert_dataset_invariants() -> None:
    """What must hold for any dataset the generator makes, demo or operator scale."""
    for code in Municipality.objects.values_list("code", flat=True):
        assert normalize.municipality_code_is_valid(code), code

    # Every record belongs to exactly the municipality of its donor.
    assert not DonorPhone.objects.exclude(municipality=F("donor__municipality")).exists()
    assert not DonorEmail.objects.exclude(municipality=F("donor__municipality")).exists()
    assert not Donation.objects.exclude(municipality=F("donor__municipality")).exists()
    assert not Shipment.objects.exclude(municipality=F("donation__municipality")).exists()
    assert not Shipment.objects.exclude(municipality=F("gift_item__municipality")).exists()
    assert not GiftItem.objects.exclude(municipality=F("provider__municipality")).exists()

    rules = dict(Carrier.objects.values_list("id", "tracking_rule"))
    tracked = Shipment.objects.exclude(tracking_number="").values_list(
        "carrier_id", "tracking_number"
    )
    assert tracked
    for carrier_id, number in tracked:
        assert normalize.tracking_number_is_valid(number, rules[carrier_id]), number
    used_rules = {rules[c] for c, _ in tracked}
    assert {normalize.TRACKING_RULE_MOD7_12, normalize.TRACKING_RULE_MOD7_11} <= used_rules

    # Phones are stored as crm.normalize stores them; the raw form is what the source wrote.
    phones = list(DonorPhone.objects.values_list("e164", "raw"))
    for e164, raw in phones:
        assert normalize.normalize_phone(raw) == e164, raw
    raws = [raw for _, raw in phones]
    assert any(re.fullmatch(r"0\d{9,10}", r) for r in raws)  # plain
    assert any(re.fullmatch(r"0\d+-\d+-\d{4}", r) for r in raws)  # hyphenated
    assert any("－" in r for r in raws)  # full-width
    assert any(r.startswith("+81") for r in raws)  # E.164 as Twilio sends it

    for kana in Donor.objects.values_list("name_kana", flat=True):
        assert kana == normalize.normalize_kana(kana) and normalize.looks_like_kana(kana), kana
    for address in DonorEmail.objects.values_list("address", flat=True):
        assert address == normalize.normalize_email(address)
        assert address.rsplit("@", 1)[1].startswith("example."), address

    for portal, number in Donation.objects.values_list("portal", "portal_order_number"):
        assert re.fullmatch(ORDER_NUMBER_FORMATS[portal], number), (portal, number)

    # Re-shipments replace a shipment of the same donation.
    replacements = Shipment.objects.filter(replaces__isnull=False)
    assert replacements.exists()
    assert not replacements.exclude(replaces__donation=F("donation")).exists()
    assert not replacements.exclude(replaces__status__in=["returned", "lost", "delivered"]).exists()

    # Residents and declined gifts get nothing shipped.
    assert Donor.objects.filter(is_resident=True).exists()
    assert not Shipment.objects.filter(donation__donor__is_resident=True).exists()
    assert Donation.objects.filter(gift_declined=True).exists()
    assert not Shipment.objects.filter(donation__gift_declined=True).exists()
    assert Donation.objects.filter(one_stop_requested=True).exists()
    assert Donation.objects.filter(receipt_issued_on__isnull=False).exists()
    assert GiftItem.objects.filter(deliveries__gt=1).exists()
    assert GiftItem.objects.filter(perishable=True).exists()
    assert GiftItem.objects.filter(season_start_month__isnull=False).exists()


def test_demo_dataset():
    counts = call_command_counts("--today", TODAY.isoformat(), "--donors-per-city", "80")
    assert counts["donors"] == 240

    assert_dataset_invariants()
    assert list(Municipality.objects.values_list("code", "name", "prefecture")) == [
        ("012033", "小樽市", "北海道"),
        ("142051", "藤沢市", "神奈川県"),
        ("342076", "福山市", "広島県"),
    ]
    otaru = Municipality.objects.get(code="012033")
    assert (
        otaru.greeting
        == "お電話ありがとうございます。小樽市ふるさと納税コールセンターでございます。"
    )
    inbound = list(MunicipalityPhoneNumber.objects.values_list("e164", flat=True))
    assert len(inbound) == len(set(inbound)) == 6
    assert all(normalize.normalize_phone(n) == n for n in inbound)
    assert set(Shipment.objects.values_list("status", flat=True)) == set(Shipment.Status.values)
    assert Donation.objects.filter(shipments__delivery_number__gt=1).exists()  # 定期便
    # The same person known separately to two municipalities.
    assert (
        DonorPhone.objects.values("e164")
        .annotate(n=Count("municipality", distinct=True))
        .filter(n__gt=1)
        .exists()
    )


def call_command_counts(*args: str) -> dict[str, int]:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return {
        k: int(v.replace(",", ""))
        for k, v in re.findall(r"(\w+) ([\d,]+)", out.getvalue().split("投入しました")[-1])
    }


def _generate(seed: int) -> list:
    rng = random.Random(seed)
    people = PersonMaker(rng)
    planner = Planner(rng, people, TODAY)
    catalogue = Catalogue(data.OTARU)
    out = []
    for _ in range(50):
        person = people.person()
        plan = planner.donation(catalogue, person, is_resident=False, shipments_wanted=1.5)
        out.append((person, plan))
    return out


def test_same_seed_and_day_give_the_same_data():
    assert _generate(7) == _generate(7)
    assert _generate(7) != _generate(8)


def test_if_empty_does_nothing_when_municipalities_exist():
    args = ["--today", TODAY.isoformat(), "--donors-per-city", "5", "--no-users"]
    call_command("seed_demo", "--if-empty", *args, stdout=StringIO())
    donors = Donor.objects.count()
    assert donors == 15
    out = StringIO()
    call_command("seed_demo", "--if-empty", *args, stdout=out)
    assert "投入しませんでした" in out.getvalue()
    assert Donor.objects.count() == donors
    with pytest.raises(CommandError):
        call_command("seed_demo", *args)


def test_demo_logins_follow_the_password_rule_and_staff_have_totp():
    call_command("seed_demo", "--today", TODAY.isoformat(), "--donors-per-city", "2")
    for login in DEMO_LOGINS:
        user = User.objects.get(username=login.username)
        validate_password(login.password, user)
        assert user.check_password(login.password)
        has_device = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        assert has_device == user.is_operator_staff
    officials = User.objects.filter(role=User.Role.CITY_OFFICIAL)
    assert officials.count() == 3
    assert all(u.municipalities.count() == 1 for u in officials)
    assert User.objects.get(username="agent_multi").municipalities.count() == 3

    out = StringIO()
    call_command("demo_logins", stdout=out)
    assert "agent_otaru" in out.getvalue() and "Otaru!Call24" in out.getvalue()
    assert "totp_code" in out.getvalue()

    out = StringIO()
    call_command("totp_code", "agent_otaru", stdout=out)
    code = out.getvalue().strip()
    assert re.fullmatch(r"\d{6}", code)
    device = TOTPDevice.objects.get(user__username="agent_otaru")
    assert device.verify_token(code)
    with pytest.raises(CommandError):
        call_command("totp_code", "city_otaru")


def _index_definitions() -> list[tuple[str, str]]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid = ANY(%s::regclass[]) ORDER BY 1",
            [scale.LARGE_TABLES],
        )
        return cur.fetchall()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="--scale loads with PostgreSQL COPY")
def test_scale_load_on_tiny_numbers():
    before = _index_definitions()
    counts = call_command_counts(
        "--scale",
        "--today",
        TODAY.isoformat(),
        "--municipalities",
        "4",
        "--donors",
        "400",
        "--donations",
        "520",
        "--shipments",
        "800",
        "--no-users",
        "--rebuild-indexes",
    )
    assert counts["municipalities"] == Municipality.objects.count() == 4
    assert counts["donors"] == Donor.objects.count() == 400
    assert counts["donations"] == Donation.objects.count() == 520
    assert Shipment.objects.count() == counts["shipments"]
    assert 760 <= counts["shipments"] <= 800
    assert _index_definitions() == before
    assert_dataset_invariants()
    # Every municipality got donors.
    assert set(Donor.objects.values_list("municipality", flat=True)) == set(
        Municipality.objects.values_list("id", flat=True)
    )
    # The sequences moved past the copied ids: the ORM can add rows afterwards.
    donor = Donor.objects.create(municipality=Municipality.objects.first(), name="追加 太郎")
    assert donor.id > max(Donor.objects.exclude(id=donor.id).values_list("id", flat=True))
