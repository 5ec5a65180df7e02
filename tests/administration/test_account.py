"""Every user's own account: change the password (the policy applies), see recent log-ins, log
out everywhere."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from crm.models import AuditLog
from tests.conftest import PASSWORD, login_as

pytestmark = pytest.mark.django_db

ACCOUNT = reverse("administration:account")


def _sessions_of(user) -> int:
    return sum(
        1
        for s in Session.objects.all()
        if str(s.get_decoded().get("_auth_user_id")) == str(user.pk)
    )


@pytest.fixture(params=["agent_a", "supervisor", "city_official_b", "operator_admin"])
def anyone(request):
    return request.getfixturevalue(request.param)


def test_change_password_keeps_this_session_and_ends_the_others(anyone):
    here = login_as(Client(), anyone)
    elsewhere = login_as(Client(), anyone)
    response = here.post(
        ACCOUNT,
        {
            "old_password": PASSWORD,
            "new_password": "Neue#Passw0rt",
            "new_password_again": "Neue#Passw0rt",
        },
    )
    assert response.status_code == 302
    anyone.refresh_from_db()
    assert anyone.check_password("Neue#Passw0rt")
    assert here.get(ACCOUNT).status_code == 200  # still signed in here
    assert elsewhere.get(ACCOUNT).status_code == 302  # not there
    assert AuditLog.objects.filter(user=anyone, action=AuditLog.Action.PASSWORD_CHANGED).exists()


@pytest.mark.parametrize(
    ("old", "new", "again", "says"),
    [
        ("wrong", "Neue#Passw0rt", "Neue#Passw0rt", "現在のパスワードが正しくありません"),
        (PASSWORD, "short1!", "short1!", "短すぎ"),
        (PASSWORD, "alllowercase1!", "alllowercase1!", "英大文字"),
        (PASSWORD, "Neue#Passw0rt", "Other#Passw0rt", "一致しません"),
    ],
)
def test_password_policy_enforced(agent_a, old, new, again, says):
    client = login_as(Client(), agent_a)
    response = client.post(
        ACCOUNT, {"old_password": old, "new_password": new, "new_password_again": again}
    )
    assert response.status_code == 200
    assert says in response.content.decode()
    agent_a.refresh_from_db()
    assert agent_a.check_password(PASSWORD)


def test_recent_log_ins_are_the_users_own(agent_a, supervisor):
    for user in (agent_a, supervisor):
        Client().post(reverse("login"), {"username": user.username, "password": PASSWORD})
    Client().post(reverse("login"), {"username": agent_a.username, "password": "wrong"})
    client = login_as(Client(), agent_a)
    page = client.get(ACCOUNT).content.decode()
    logins = page.split('id="logins"')[1].split("</section>")[0]
    # The password log-in and this client's own; the supervisor's is not shown.
    assert logins.count("<td>ログイン</td>") == 2
    assert logins.count("<td>ログイン失敗</td>") == 1
    assert AuditLog.objects.filter(user=supervisor, action="login").count() == 1
    assert logins.count("<tr>") == 3 + 1  # three rows and the header


def test_log_out_everywhere(agent_a):
    here = login_as(Client(), agent_a)
    login_as(Client(), agent_a)
    assert _sessions_of(agent_a) == 2
    # Without the confirmation nothing happens.
    here.post(reverse("administration:account_logout_everywhere"))
    assert _sessions_of(agent_a) == 2
    response = here.post(reverse("administration:account_logout_everywhere"), {"everywhere": "1"})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert _sessions_of(agent_a) == 0
    assert AuditLog.objects.filter(user=agent_a, action=AuditLog.Action.LOGOUT_EVERYWHERE).exists()


def test_anonymous_has_no_account_page():
    assert Client().get(ACCOUNT).status_code == 302
