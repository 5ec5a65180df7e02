"""Enrolling an authenticator needs a one-time link from an operator admin, not just a password."""

from __future__ import annotations

import datetime
import io
import re

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm.models import AuditLog, EnrolmentLink, User
from tests.conftest import PASSWORD
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NEEDS_LINK = "二要素認証の登録用リンクを管理者に発行してもらってください"


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def _password_login(username: str, next_url: str = "") -> tuple[Client, object]:
    client = Client()
    data = {"username": username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client, client.post(reverse("login"), data)


def _issue(admin: Client, user: User) -> str:
    """Issue a link on the staff page; returns the link's path as shown (once) to the admin."""
    response = admin.post(reverse("staff_enrolment_link", args=[user.pk]))
    assert response.status_code == 200
    found = re.search(r'value="https?://[^/"]+(/2fa/enrol/[^"]+/)"', response.content.decode())
    assert found, response.content.decode()
    return found.group(1)


@pytest.fixture
def admin(login, operator_admin) -> Client:
    return login(operator_admin)


def test_password_alone_shows_no_secret(agent_a):
    client, _ = _password_login("agent_a")
    page = client.get(reverse("two_factor"))
    body = page.content.decode()
    assert page.status_code == 200 and NEEDS_LINK in body
    assert "QRコード" not in body and "手入力用キー" not in body and "otpauth" not in body
    assert not TOTPDevice.objects.filter(user=agent_a).exists()
    # Nothing to verify against, and everything else still sends them back here.
    client.post(reverse("two_factor"), {"token": "123456"})
    assert not TOTPDevice.objects.filter(user=agent_a).exists()
    assert client.get(reverse("console")).url == reverse("two_factor")


def test_enrolment_with_a_link(admin, operator_admin, agent_a):
    path = _issue(admin, agent_a)
    token = path.rstrip("/").rsplit("/", 1)[1]
    link = EnrolmentLink.objects.get(user=agent_a)
    assert token not in link.token_hash and len(link.token_hash) == 64
    issued = AuditLog.objects.get(action=AuditLog.Action.OTP_LINK_ISSUED)
    assert issued.user == operator_admin and issued.detail["target"] == "agent_a"
    assert token not in str(issued.detail)

    # Opening the link first asks for the password, then comes back to it.
    anonymous = Client().get(path)
    assert anonymous.status_code == 302 and anonymous.url.startswith(reverse("login"))
    client, response = _password_login("agent_a", next_url=path)
    assert response.url == path
    page = client.get(path)
    assert page.status_code == 200 and "QRコード" in page.content.decode()
    device = TOTPDevice.objects.get(user=agent_a)
    assert not device.confirmed

    wrong = "000000" if _code(device) != "000000" else "111111"
    assert client.post(path, {"token": wrong}).status_code == 200
    device.refresh_from_db()
    assert not device.confirmed
    assert AuditLog.objects.filter(action=AuditLog.Action.OTP_FAILED, user=agent_a).exists()
    device.throttle_reset()  # django-otp's back-off after a failure (tested in test_auth)

    done = client.post(path, {"token": _code(device)})
    assert done.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("municipality_list")).status_code == 200  # verified session
    enrolled = AuditLog.objects.get(action=AuditLog.Action.OTP_ENROLLED)
    assert enrolled.user == agent_a and enrolled.detail["link"] == link.pk

    # Single use: the same link, opened again by the same person, shows nothing.
    again, _ = _password_login("agent_a")
    reused = again.get(path)
    assert reused.status_code == 404
    assert "QRコード" not in reused.content.decode() and NEEDS_LINK in reused.content.decode()


def test_a_key_shown_before_the_link_is_never_the_one_enrolled(admin, agent_a):
    # An unconfirmed device from before (its key may have been shown to whoever had the password).
    seen = TOTPDevice.objects.create(user=agent_a, name="old", confirmed=False)
    path = _issue(admin, agent_a)
    client, _ = _password_login("agent_a")
    assert client.post(path, {"token": _code(seen)}).status_code == 200
    assert not TOTPDevice.objects.filter(pk=seen.pk).exists()
    assert not TOTPDevice.objects.filter(user=agent_a, confirmed=True).exists()


def test_the_link_expires(admin, agent_a):
    path = _issue(admin, agent_a)
    with time_machine.travel(timezone.now() + datetime.timedelta(hours=71)):
        client, _ = _password_login("agent_a")
        assert client.get(path).status_code == 200
    with time_machine.travel(timezone.now() + datetime.timedelta(hours=73)):
        client, _ = _password_login("agent_a")
        page = client.get(path)
    assert page.status_code == 404 and "QRコード" not in page.content.decode()


def test_a_newer_link_replaces_the_older(admin, agent_a):
    older = _issue(admin, agent_a)
    newer = _issue(admin, agent_a)
    client, _ = _password_login("agent_a")
    assert client.get(older).status_code == 404
    assert client.get(newer).status_code == 200


def test_a_link_works_only_for_its_user(admin, agent_a, city_a):
    path = _issue(admin, agent_a)
    other = UserFactory(username="agent_other", role=User.Role.AGENT, municipalities=[city_a])
    client, _ = _password_login("agent_other")
    page = client.get(path)
    assert page.status_code == 404 and "QRコード" not in page.content.decode()
    assert not TOTPDevice.objects.filter(user__in=[agent_a, other]).exists()


def test_reset_makes_the_user_enrol_again(login, admin, operator_admin, agent_a):
    agent = login(agent_a)  # verified with a confirmed device
    assert agent.get(reverse("municipality_list")).status_code == 200
    response = admin.post(reverse("staff_two_factor_reset", args=[agent_a.pk]))
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=agent_a).exists()
    reset = AuditLog.objects.get(action=AuditLog.Action.OTP_RESET)
    assert reset.user == operator_admin and reset.detail == {"target": "agent_a", "devices": 1}
    # The session verified with the removed device is verified no longer.
    assert agent.get(reverse("municipality_list")).url == reverse("two_factor")
    assert NEEDS_LINK in agent.get(reverse("two_factor")).content.decode()


def test_reset_also_voids_unused_links(admin, agent_a):
    path = _issue(admin, agent_a)
    admin.post(reverse("staff_two_factor_reset", args=[agent_a.pk]))
    client, _ = _password_login("agent_a")
    assert client.get(path).status_code == 404


def test_staff_page_lists_people_for_operator_admins(admin, agent_a, supervisor, city_official_b):
    page = admin.get(reverse("staff_list"))
    body = page.content.decode()
    assert page.status_code == 200
    for text in ("agent_a", "supervisor", "city_b", "小樽市", "福山市", "自治体職員", "未登録"):
        assert text in body
    city_row = body.split(f'id="user-{city_official_b.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "登録リンク発行" not in city_row  # city officials log in without a second factor
    assert admin.post(reverse("staff_enrolment_link", args=[city_official_b.pk])).status_code == 302
    assert not EnrolmentLink.objects.exists()


@pytest.mark.parametrize("who", ["supervisor", "agent_a", "city_official_b"])
def test_staff_page_refused_to_everyone_else(login, who, request, agent_a):
    client = login(request.getfixturevalue(who))
    device_count = TOTPDevice.objects.count()
    assert client.get(reverse("staff_list")).status_code == 403
    assert client.post(reverse("staff_enrolment_link", args=[agent_a.pk])).status_code == 403
    assert client.post(reverse("staff_two_factor_reset", args=[agent_a.pk])).status_code == 403
    assert not EnrolmentLink.objects.exists()
    assert TOTPDevice.objects.count() == device_count
    assert Client().get(reverse("staff_list")).status_code == 302  # anonymous: to the log-in


def test_first_admin_of_a_fresh_install(db):
    admin = User.objects.create_superuser("founder", "founder@example.jp", PASSWORD)
    assert admin.role == User.Role.OPERATOR_ADMIN
    out = io.StringIO()
    call_command(
        "issue_enrolment_link",
        "founder",
        "--base-url",
        "https://cc.example.jp",
        stdout=out,
        stderr=io.StringIO(),
    )
    url = out.getvalue().strip()
    assert url.startswith("https://cc.example.jp/2fa/enrol/")
    path = url.removeprefix("https://cc.example.jp")
    client, _ = _password_login("founder", next_url=path)
    client.get(path)
    device = TOTPDevice.objects.get(user=admin)
    assert client.post(path, {"token": _code(device)}).status_code == 302
    assert client.get(reverse("staff_list")).status_code == 200
