"""TOTP for city officials, set per municipality: where it is on, a city official must pass it
before seeing anything (escalations included); elsewhere they need not."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm.models import EnrolmentLink

pytestmark = pytest.mark.django_db


def test_operator_admin_turns_totp_on_for_one_citys_officials(
    login, operator_admin, city_a, city_official_a, city_official_b
):
    admin = login(operator_admin)
    response = admin.post(
        reverse("escalation:municipality_city_totp", args=[city_a.pk]), {"required": "1"}
    )
    assert response.status_code == 302
    city_a.refresh_from_db()
    assert city_a.city_officials_use_totp

    a = Client()
    a.force_login(city_official_a)
    response = a.get(reverse("escalation:list"))
    assert response.status_code == 302 and response["Location"] == reverse("two_factor")
    b = Client()
    b.force_login(city_official_b)  # 福山市 has not asked for it
    assert b.get(reverse("escalation:list")).status_code == 200

    # The operator admin issues the official an enrolment link; they enrol and get in.
    issued = admin.post(reverse("staff_enrolment_link", args=[city_official_a.pk]))
    assert issued.status_code == 200
    token = issued.content.decode().split("/2fa/enrol/")[1].split("/")[0]
    page = a.get(reverse("two_factor_enrol", args=[token]))
    assert page.status_code == 200
    device = EnrolmentLink.objects.get(user=city_official_a).device
    code = TOTP(device.bin_key, device.step, device.t0, device.digits).token()
    done = a.post(reverse("two_factor_enrol", args=[token]), {"token": f"{code:06d}"})
    assert done.status_code == 302
    assert a.get(reverse("escalation:list")).status_code == 200


def test_supervisors_cannot_change_it(login, supervisor, city_a):
    response = login(supervisor).post(
        reverse("escalation:municipality_city_totp", args=[city_a.pk]), {"required": "1"}
    )
    assert response.status_code == 404
    city_a.refresh_from_db()
    assert not city_a.city_officials_use_totp


def test_a_verified_session_passes(city_a, city_official_a):
    city_a.city_officials_use_totp = True
    city_a.save()
    device = TOTPDevice.objects.create(user=city_official_a, name="phone", confirmed=True)
    client = Client()
    client.force_login(city_official_a)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    assert client.get(reverse("escalation:list")).status_code == 200
