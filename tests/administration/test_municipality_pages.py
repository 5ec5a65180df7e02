"""The municipality pages of the operator admin area: every change through the pages, audited;
everyone else refused."""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import AuditLog, CityContact, Municipality, MunicipalityEmailAddress, Provider
from telephony.models import CalendarException, PhoneSettings, WeeklyHours
from tests.conftest import login_as
from tests.factories import MunicipalityPhoneNumberFactory
from tickets.mail.models import Mailbox, MunicipalityMailSettings

pytestmark = pytest.mark.django_db

NEW_CITY = {
    "code": "142051",
    "name": "藤沢市",
    "name_kana": "フジサワシ",
    "prefecture": "神奈川県",
    "answer_name": "藤沢市ふるさと納税コールセンター",
    "residents_excluded": "on",
    "contract_start": "2026-04-01",
    "contract_end": "2027-03-31",
}


def _changes(what: str) -> list[AuditLog]:
    return list(AuditLog.objects.filter(action=AuditLog.Action.CONFIG_CHANGED, detail__what=what))


def _url(name: str, *args) -> str:
    return reverse(f"administration:{name}", args=args)


def test_create_then_edit_a_municipality(admin, operator_admin):
    response = admin.post(_url("municipality_create"), NEW_CITY)
    city = Municipality.objects.get(code="142051")
    assert response.status_code == 302 and response["Location"].startswith(
        _url("municipality_detail", city.pk)
    )
    assert (city.name, city.name_kana, city.contract_end) == (
        "藤沢市",
        "フジサワシ",
        datetime.date(2027, 3, 31),
    )
    [created] = _changes("municipality.create")
    assert created.user == operator_admin and created.detail["municipality"] == "142051"

    edited = {**NEW_CITY, "answer_name": "藤沢市ふるさと納税お問合せ窓口"}
    admin.post(_url("municipality_edit", city.pk), edited)
    city.refresh_from_db()
    assert city.answer_name == "藤沢市ふるさと納税お問合せ窓口"
    [updated] = _changes("municipality.update")
    assert updated.detail["changed"] == {
        "answer_name": ["藤沢市ふるさと納税コールセンター", "藤沢市ふるさと納税お問合せ窓口"]
    }
    page = admin.get(_url("municipality_detail", city.pk)).content.decode()
    assert "お電話ありがとうございます。藤沢市ふるさと納税お問合せ窓口でございます。" in page
    assert admin.get(_url("index")).content.decode().count("藤沢市") >= 1


def test_contract_end_before_start_is_refused(admin):
    response = admin.post(_url("municipality_create"), {**NEW_CITY, "contract_end": "2026-03-01"})
    assert (
        response.status_code == 200
        and "契約終了日が契約開始日より前です" in response.content.decode()
    )
    assert not Municipality.objects.filter(code="142051").exists()


def test_full_width_code_is_stored_ascii(admin):
    admin.post(_url("municipality_create"), {**NEW_CITY, "code": "１４２０５１"})
    assert Municipality.objects.filter(code="142051").exists()


def test_phone_numbers_are_e164_and_unique_across_municipalities(admin, city_a, city_b, settings):
    settings.TWILIO_PUBLIC_BASE_URL = "https://calls.example.jp"
    MunicipalityPhoneNumberFactory(municipality=city_b, e164="+81849281111")
    admin.post(_url("phone_number_add", city_a.pk), {"number": "0134-32-4111", "label": "代表"})
    assert list(city_a.phone_numbers.values_list("e164", "label")) == [("+81134324111", "代表")]
    assert _changes("phone_number.add")[0].detail["e164"] == "+81134324111"

    response = admin.post(
        _url("phone_number_add", city_a.pk), {"number": "084-928-1111"}, follow=True
    )
    assert "この番号はすでに福山市に登録されています" in response.content.decode()
    response = admin.post(_url("phone_number_add", city_a.pk), {"number": "12345"}, follow=True)
    assert "電話番号として正しくありません" in response.content.decode()
    assert city_a.phone_numbers.count() == 1

    page = admin.get(_url("municipality_detail", city_a.pk)).content.decode()
    assert "https://calls.example.jp/telephony/webhooks/voice/inbound/" in page
    assert "https://calls.example.jp/telephony/webhooks/status/call/" in page

    number = city_a.phone_numbers.get()
    admin.post(_url("phone_number_remove", city_a.pk, number.pk))
    assert not city_a.phone_numbers.exists()
    assert _changes("phone_number.remove")


def test_inbound_addresses_mailbox_and_acknowledgement(admin, city_a, city_b):
    admin.post(_url("inbound_address_add", city_a.pk), {"address": "Furusato@Otaru.example.jp"})
    address = MunicipalityEmailAddress.objects.get(municipality=city_a)
    assert address.address == "furusato@otaru.example.jp"
    assert Mailbox.objects.filter(address=address, protocol="none").exists()
    response = admin.post(
        _url("inbound_address_add", city_b.pk),
        {"address": "furusato@otaru.example.jp"},
        follow=True,
    )
    assert "すでに登録されています" in response.content.decode()
    assert not MunicipalityEmailAddress.objects.filter(municipality=city_b).exists()

    admin.post(
        _url("mailbox_edit", city_a.pk, address.pk),
        {
            "protocol": "imap",
            "host": "imap.example.jp",
            "port": "993",
            "use_ssl": "on",
            "username": "furusato",
            "password": "imap-secret",
            "folder": "INBOX",
            "outbound_charset": "iso-2022-jp",
            "display_name": "小樽市ふるさと納税",
            "active": "on",
        },
    )
    box = Mailbox.objects.get(address=address)
    assert (box.protocol, box.host, box.port, box.password) == (
        "imap",
        "imap.example.jp",
        993,
        "imap-secret",
    )
    [change] = _changes("mailbox.update")
    assert "imap-secret" not in str(change.detail)

    admin.post(
        _url("mail_settings_save", city_a.pk),
        {
            "acknowledgement_enabled": "on",
            "acknowledgement_subject": "【受付】{subject}",
            "acknowledgement_body": "受け付けました。{ticket_id}",
        },
    )
    assert MunicipalityMailSettings.objects.get(municipality=city_a).acknowledgement_enabled
    assert _changes("mail_settings.update")


def test_calendar_preset_hours_exceptions_and_preview(admin, city_a):
    admin.post(
        _url("calendar_preset", city_a.pk),
        {"preset": "every_day_except_new_year", "opens": "09:00", "closes": "17:00"},
    )
    assert WeeklyHours.objects.filter(municipality=city_a).count() == 7
    assert CalendarException.objects.get(municipality=city_a, every_year=True).label == "年始休業"

    hours = {f"opens_{d}": "" for d in range(7)} | {f"closes_{d}": "" for d in range(7)}
    hours |= {"opens_0": "08:30", "closes_0": "17:15", "opens_2": "09:00", "closes_2": "12:00"}
    admin.post(_url("calendar_weekly", city_a.pk), hours)
    assert list(
        WeeklyHours.objects.filter(municipality=city_a).values_list("weekday", "opens", "closes")
    ) == [
        (0, datetime.time(8, 30), datetime.time(17, 15)),
        (2, datetime.time(9), datetime.time(12)),
    ]
    assert not PhoneSettings.objects.get(municipality=city_a).open_on_holidays

    bad = admin.post(
        _url("calendar_weekly", city_a.pk),
        hours | {"opens_1": "18:00", "closes_1": "09:00"},
        follow=True,
    )
    assert "終了は開始より後" in bad.content.decode()
    assert WeeklyHours.objects.filter(municipality=city_a).count() == 2

    today = timezone.localdate()
    closure = today + datetime.timedelta(days=1)
    while closure.weekday() != 0:
        closure += datetime.timedelta(days=1)
    admin.post(
        _url("calendar_exception_add", city_a.pk),
        {"label": "庁舎点検", "start_date": closure, "end_date": closure, "closed": "on"},
    )
    assert CalendarException.objects.filter(municipality=city_a, label="庁舎点検").exists()

    page = admin.get(_url("municipality_detail", city_a.pk)).content.decode()
    preview = page.split('id="calendar-preview"')[1].split("</table>")[0]
    assert preview.count("<tr") == 15  # header + 14 days
    assert "庁舎点検" in preview and "08:30〜17:15" in preview

    exc = CalendarException.objects.get(label="庁舎点検")
    admin.post(_url("calendar_exception_delete", city_a.pk, exc.pk))
    assert not CalendarException.objects.filter(label="庁舎点検").exists()
    whats = set(
        AuditLog.objects.filter(action=AuditLog.Action.CONFIG_CHANGED).values_list(
            "detail__what", flat=True
        )
    )
    assert {
        "calendar.preset",
        "calendar.weekly_hours",
        "calendar.exception_add",
        "calendar.exception_delete",
    } <= whats


def test_ivr_options_and_phone_settings(admin, city_a):
    admin.post(
        _url("ivr_options_save", city_a.pk),
        {"label_1": "寄附者の方", "type_1": "donor", "label_2": "事業者の方", "type_2": "provider"}
        | {f"type_{d}": "other" for d in "345"},
    )
    assert PhoneSettings.objects.get(municipality=city_a).ivr_options == {
        "1": {"label": "寄附者の方", "requester_type": "donor"},
        "2": {"label": "事業者の方", "requester_type": "provider"},
    }
    page = admin.get(_url("municipality_detail", city_a.pk)).content.decode()
    assert 'name="label_1" value="寄附者の方"' in page and 'name="label_3"' in page
    admin.post(
        _url("phone_settings_save", city_a.pk),
        {
            "greeting": "",
            "hold_message": "しばらくお待ちください。",
            "max_queue_wait_seconds": "120",
            "ring_timeout_seconds": "25",
        },
    )
    settings_row = PhoneSettings.objects.get(municipality=city_a)
    assert (settings_row.ring_timeout_seconds, settings_row.record_calls) == (25, False)
    assert len(_changes("phone_settings.update")) == 2


def test_contacts_in_order_and_providers(admin, city_a):
    admin.post(
        _url("city_contact_add", city_a.pk),
        {
            "name": "小樽 花子",
            "department": "企画政策室",
            "phone": "0134-32-4111",
            "escalation_order": "2",
        },
    )
    admin.post(
        _url("city_contact_add", city_a.pk),
        {
            "name": "小樽 一郎",
            "department": "企画政策室",
            "email": "ichiro@city.otaru.example.jp",
            "escalation_order": "1",
        },
    )
    assert list(CityContact.objects.filter(municipality=city_a).values_list("name", "phone")) == [
        ("小樽 一郎", ""),
        ("小樽 花子", "+81134324111"),
    ]
    contact = CityContact.objects.get(name="小樽 一郎")
    admin.post(_url("city_contact_delete", city_a.pk, contact.pk))
    assert CityContact.objects.filter(municipality=city_a).count() == 1

    admin.post(_url("provider_add", city_a.pk), {"code": "P001", "name": "小樽海産"})
    assert Provider.objects.filter(municipality=city_a, code="P001").exists()
    assert _changes("provider.save") and len(_changes("city_contact.save")) == 2


def test_carriers(admin):
    admin.post(
        _url("carriers"),
        {
            "code": "sagawa",
            "name": "佐川急便",
            "short_name": "佐川",
            "tracking_url_template": "https://k2k.sagawa-exp.co.jp/p/sagawa/web/okurijoinput.jsp?okurijoNo={number}",
            "tracking_rule": "mod7_12",
        },
    )
    assert "佐川急便" in admin.get(_url("carriers")).content.decode()
    assert _changes("carrier.save")


@pytest.fixture(params=["supervisor", "agent_a", "city_official_a"])
def not_admin(request):
    return request.getfixturevalue(request.param)


def test_everyone_else_gets_nothing(not_admin, city_a):
    client = login_as(Client(), not_admin)
    for name, args in [
        ("index", ()),
        ("onboard", ()),
        ("municipality_create", ()),
        ("municipality_detail", (city_a.pk,)),
        ("municipality_edit", (city_a.pk,)),
        ("staff_list", ()),
        ("staff_create", ()),
        ("staff_import", ()),
        ("access_matrix", ()),
        ("carriers", ()),
    ]:
        assert client.get(_url(name, *args)).status_code == 403, name
    for name in (
        "phone_number_add",
        "municipality_suspend",
        "calendar_preset",
        "inbound_address_add",
    ):
        assert client.post(_url(name, city_a.pk), {"number": "0134-32-4111"}).status_code == 403
    assert not city_a.phone_numbers.exists()
    city_a.refresh_from_db()
    assert city_a.suspended_at is None
    assert not AuditLog.objects.filter(action=AuditLog.Action.CONFIG_CHANGED).exists()


def test_operator_admin_without_two_factor_is_sent_to_it(operator_admin, city_a):
    client = Client()
    client.force_login(operator_admin)
    response = client.get(_url("municipality_detail", city_a.pk))
    assert response.status_code == 302 and response["Location"].startswith(reverse("two_factor"))
    response = client.post(_url("municipality_suspend", city_a.pk))
    assert response.status_code == 302
    city_a.refresh_from_db()
    assert city_a.suspended_at is None


def test_anonymous_is_sent_to_log_in(city_a):
    response = Client().get(_url("municipality_detail", city_a.pk))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_edit_contact_provider_and_carrier(admin, city_a, city_b):
    contact = CityContact.objects.create(
        municipality=city_a, name="小樽 花子", department="企画政策室", escalation_order=1
    )
    page = admin.get(_url("city_contact_edit", city_a.pk, contact.pk))
    assert page.status_code == 200 and "小樽 花子" in page.content.decode()
    admin.post(
        _url("city_contact_edit", city_a.pk, contact.pk),
        {
            "name": "小樽 花子",
            "department": "産業港湾部",
            "phone": "0134-32-4111",
            "escalation_order": "3",
        },
    )
    contact.refresh_from_db()
    assert (contact.department, contact.phone, contact.escalation_order) == (
        "産業港湾部",
        "+81134324111",
        3,
    )
    # Another municipality's contact is not reachable under this one.
    assert admin.get(_url("city_contact_edit", city_b.pk, contact.pk)).status_code == 404

    provider = Provider.objects.create(municipality=city_a, code="P001", name="小樽海産")
    admin.post(
        _url("provider_edit", city_a.pk, provider.pk),
        {"code": "P001", "name": "小樽海産株式会社", "phone": "0134-22-0000"},
    )
    provider.refresh_from_db()
    assert (provider.name, provider.phone) == ("小樽海産株式会社", "+81134220000")

    from crm.models import Carrier

    carrier = Carrier.objects.create(
        code="yamato",
        name="ヤマト運輸",
        short_name="ヤマト",
        tracking_url_template="https://example.jp/{number}",
        tracking_rule="mod7_12",
    )
    admin.post(
        _url("carrier_edit", carrier.pk),
        {
            "code": "yamato",
            "name": "ヤマト運輸株式会社",
            "short_name": "ヤマト",
            "tracking_url_template": "https://example.jp/{number}",
            "tracking_rule": "mod7_12",
        },
    )
    carrier.refresh_from_db()
    assert carrier.name == "ヤマト運輸株式会社"
    whats = list(
        AuditLog.objects.filter(action=AuditLog.Action.CONFIG_CHANGED).values_list(
            "detail__what", flat=True
        )
    )
    assert {"city_contact.save", "provider.save", "carrier.save"} <= set(whats)


def test_assign_staff_from_the_municipality_page(
    admin, city_a, agent_a, supervisor, city_official_a
):
    from tests.factories import UserFactory

    newcomer = UserFactory(username="newcomer", role="agent")
    admin.post(_url("municipality_staff", city_a.pk), {"staff": [newcomer.pk, supervisor.pk]})
    assert set(city_a.staff.all()) == {newcomer, supervisor, city_official_a}  # official kept
    change = AuditLog.objects.get(detail__what="staff.assign")
    assert change.detail["added"] == ["newcomer"] and change.detail["removed"] == ["agent_a"]
    # A city official cannot be ticked here.
    response = admin.post(
        _url("municipality_staff", city_a.pk), {"staff": [city_official_a.pk]}, follow=True
    )
    assert (
        "正しく選択してください" in response.content.decode()
        or "有効な選択" in response.content.decode()
    )
    assert newcomer in city_a.staff.all()
