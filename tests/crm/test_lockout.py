"""Log-in throttling: repeated failures lock an account, or a client address, for a while.

Defaults: 10 failures lock for 30 minutes (LOGIN_FAILURE_LIMIT, LOGIN_LOCKOUT_MINUTES).
"""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import AuditLog
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

WRONG = "Wrong#Pass1"
LOCKED_TEXT = "ログインの失敗が続いたため"


def _attempt(username: str, password: str, ip: str = "192.0.2.10"):
    client = Client(REMOTE_ADDR=ip)
    response = client.post(reverse("login"), {"username": username, "password": password})
    return client, response


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_failures_lock_the_account_even_for_the_right_password(city_official_b):
    # From ever-changing addresses, and in any letter case: the account's count is one.
    for i in range(9):
        _, response = _attempt("city_b" if i % 2 else "CITY_B", WRONG, ip=f"192.0.2.{i + 1}")
        assert response.status_code == 200
        assert LOCKED_TEXT not in response.content.decode()
    _, tenth = _attempt("city_b", WRONG, ip="192.0.2.100")
    assert tenth.status_code == 429
    for i in range(15):  # 25 wrong passwords in all
        _attempt("city_b", WRONG, ip=f"198.51.100.{i + 1}")

    client, response = _attempt("city_b", PASSWORD, ip="203.0.113.5")
    assert response.status_code == 429
    assert not _logged_in(client)
    page = response.content.decode()
    assert LOCKED_TEXT in page and "運営管理者にロック解除を依頼" in page
    assert 'name="password"' in page  # the log-in page itself, in Japanese
    locks = AuditLog.objects.filter(action=AuditLog.Action.LOGIN_LOCKED)
    assert [(row.username, row.user_id) for row in locks] == [("city_b", city_official_b.pk)]
    assert not AuditLog.objects.filter(action=AuditLog.Action.LOGIN, username="city_b").exists()


def test_nine_failures_do_not_lock(city_official_b):
    for _ in range(9):
        _attempt("city_b", WRONG)
    client, response = _attempt("city_b", PASSWORD)
    assert response.status_code == 302 and _logged_in(client)


def test_the_lock_expires(city_official_b):
    for _ in range(10):
        _attempt("city_b", WRONG)
    assert _attempt("city_b", PASSWORD)[1].status_code == 429
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=31)):
        client, response = _attempt("city_b", PASSWORD)
    assert response.status_code == 302 and _logged_in(client)


def test_the_limit_is_a_setting(city_official_b, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        _attempt("city_b", WRONG)
    assert _attempt("city_b", PASSWORD)[1].status_code == 429


def test_an_address_is_locked_whatever_usernames_it_tries(city_official_b, city_official_a):
    attacker = "198.51.100.7"
    for i in range(10):
        _attempt(f"guess{i}", WRONG, ip=attacker)
    # The right password of an account never tried is refused from that address …
    client, response = _attempt("city_a", PASSWORD, ip=attacker)
    assert response.status_code == 429 and not _logged_in(client)
    # … and still accepted from anywhere else: the accounts themselves are not locked.
    client, response = _attempt("city_a", PASSWORD, ip="192.0.2.44")
    assert response.status_code == 302 and _logged_in(client)


def test_operator_admin_unlocks_an_account_on_the_staff_page(login, operator_admin, agent_a):
    for _ in range(10):
        _attempt("agent_a", WRONG)
    admin = login(operator_admin)
    page = admin.get(reverse("staff_list")).content.decode()
    row = page.split(f'id="user-{agent_a.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "ロック中" in row and reverse("staff_unlock", args=[agent_a.pk]) in row

    response = admin.post(reverse("staff_unlock", args=[agent_a.pk]))
    assert response.status_code == 302
    unlock = AuditLog.objects.get(action=AuditLog.Action.LOGIN_UNLOCKED)
    assert unlock.user == operator_admin and unlock.detail["target"] == "agent_a"
    page = admin.get(reverse("staff_list")).content.decode()
    assert "ロック中" not in page.split(f'id="user-{agent_a.pk}"', 1)[1].split("</tr>", 1)[0]

    client, response = _attempt("agent_a", PASSWORD)
    assert response.status_code == 302 and _logged_in(client)


def test_operator_admin_unlocks_an_address(login, operator_admin, city_official_b):
    attacker = "198.51.100.8"
    for i in range(10):
        _attempt(f"guess{i}", WRONG, ip=attacker)
    admin = login(operator_admin)
    page = admin.get(reverse("staff_list")).content.decode()
    assert attacker in page.split("ロック中の接続元", 1)[1]
    admin.post(reverse("staff_unlock_address"), {"ip_address": attacker})
    assert AuditLog.objects.get(action=AuditLog.Action.LOGIN_UNLOCKED).detail["ip"] == attacker
    client, response = _attempt("city_b", PASSWORD, ip=attacker)
    assert response.status_code == 302 and _logged_in(client)


@pytest.mark.parametrize("who", ["supervisor", "agent_a", "city_official_b"])
def test_only_operator_admins_unlock(login, who, request, city_official_a):
    for _ in range(10):
        _attempt("city_a", WRONG)
    client = login(request.getfixturevalue(who))
    assert client.post(reverse("staff_unlock", args=[city_official_a.pk])).status_code == 403
    ip_unlock = client.post(reverse("staff_unlock_address"), {"ip_address": "192.0.2.10"})
    assert ip_unlock.status_code == 403
    assert _attempt("city_a", PASSWORD, ip="203.0.113.9")[1].status_code == 429
    assert not AuditLog.objects.filter(action=AuditLog.Action.LOGIN_UNLOCKED).exists()
