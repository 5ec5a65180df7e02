"""The role predicates and the two-factor rule of crm/access.py, per role, as every page,
consumer and template asks them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm import access
from crm.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

#                 role                   supervisor admin  staff  city   calls
TABLE = [
    (User.Role.OPERATOR_ADMIN, True, True, True, False, True),
    (User.Role.SUPERVISOR, True, False, True, False, True),
    (User.Role.AGENT, False, False, True, False, True),
    (User.Role.CITY_OFFICIAL, False, False, False, True, False),
]


@pytest.mark.parametrize(("role", "supervisor", "admin", "staff", "city", "calls"), TABLE)
def test_role_predicates(role, supervisor, admin, staff, city, calls):
    user = UserFactory(role=role)
    assert access.is_supervisor(user) is supervisor
    assert access.is_operator_admin(user) is admin
    assert access.is_operator_staff(user) is staff
    assert access.is_city_official(user) is city
    assert access.can_take_calls(user) is calls
    # Templates ask the same functions.
    rendered = Template(
        "{% load access %}{{ u|is_supervisor }} {{ u|is_operator_admin }} "
        "{{ u|is_operator_staff }} {{ u|can_take_calls }}"
    ).render(Context({"u": user}))
    assert rendered == f"{supervisor} {admin} {staff} {calls}"


@pytest.mark.parametrize("role", [r for r, *_ in TABLE])
def test_nobody_inactive_or_anonymous_holds_a_role(role):
    inactive = UserFactory(role=role, is_active=False)
    for user in (inactive, AnonymousUser(), None):
        assert not access.is_supervisor(user)
        assert not access.is_operator_admin(user)
        assert not access.is_operator_staff(user)
        assert not access.can_take_calls(user)
        assert not access.passed_two_factor(user, {})


def _session_with(device: TOTPDevice | None) -> dict:
    return {DEVICE_ID_SESSION_KEY: device.persistent_id} if device else {}


@pytest.mark.parametrize(
    ("role", "device", "passed"),
    [
        (User.Role.CITY_OFFICIAL, None, True),
        (User.Role.AGENT, None, False),
        (User.Role.AGENT, "unconfirmed", False),
        (User.Role.AGENT, "someone_elses", False),
        (User.Role.AGENT, "confirmed", True),
        (User.Role.SUPERVISOR, "confirmed", True),
        (User.Role.OPERATOR_ADMIN, None, False),
    ],
)
def test_passed_two_factor(role, device, passed):
    user = UserFactory(role=role)
    owner = UserFactory() if device == "someone_elses" else user
    row = (
        TOTPDevice.objects.create(user=owner, name="t", confirmed=device != "unconfirmed")
        if device
        else None
    )
    assert access.passed_two_factor(user, _session_with(row)) is passed


def test_passed_two_factor_follows_the_setting(settings):
    settings.TWO_FACTOR_REQUIRED = False
    assert access.passed_two_factor(UserFactory(role=User.Role.AGENT), {})


def test_a_pickers_municipality_counts_only_when_the_user_may_see_it(agent_a, city_a, city_b):
    assert access.chosen_municipality_id(agent_a, str(city_a.pk)) == city_a.pk
    assert access.chosen_municipality_id(agent_a, str(city_b.pk)) is None  # not theirs
    for value in (None, "", "abc", "²", "-1"):
        assert access.chosen_municipality_id(agent_a, value) is None
    assert access.chosen_municipality_id(AnonymousUser(), str(city_a.pk)) is None
