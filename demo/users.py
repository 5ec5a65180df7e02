"""Demo log-ins: one per role, with a confirmed TOTP device for operator staff.

The passwords are published (``manage.py demo_logins`` prints them), so these accounts exist only
in the demo and in benchmark databases; seed_demo refuses to run in production mode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.contrib.auth.password_validation import validate_password
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm.models import Municipality, User


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    display_name: str
    # Municipality slugs (see demo.data), "*" for every seeded municipality.
    municipalities: tuple[str, ...]


DEMO_LOGINS: list[DemoLogin] = [
    DemoLogin("admin", "Kanri#Demo2024", User.Role.OPERATOR_ADMIN, "運営 管理者", ()),
    DemoLogin("supervisor", "Sv-Shift#2024", User.Role.SUPERVISOR, "佐藤 SV", ("*",)),
    DemoLogin("agent_otaru", "Otaru!Call24", User.Role.AGENT, "鈴木（小樽担当）", ("otaru",)),
    DemoLogin("agent_fukuyama", "Bingo!Call24", User.Role.AGENT, "高橋（福山担当）", ("fukuyama",)),
    DemoLogin(
        "agent_fujisawa", "Shonan!Call24", User.Role.AGENT, "田中（藤沢担当）", ("fujisawa",)
    ),
    DemoLogin(
        "agent_multi",
        "Multi#Desk2024",
        User.Role.AGENT,
        "伊藤（複数自治体）",
        ("otaru", "fukuyama", "fujisawa"),
    ),
    DemoLogin(
        "city_otaru", "Unga#Kikaku24", User.Role.CITY_OFFICIAL, "小樽市 企画政策室", ("otaru",)
    ),
    DemoLogin(
        "city_fukuyama",
        "Bara#Kikaku24",
        User.Role.CITY_OFFICIAL,
        "福山市 企画政策課",
        ("fukuyama",),
    ),
    DemoLogin(
        "city_fujisawa",
        "Enoshima#Ka24",
        User.Role.CITY_OFFICIAL,
        "藤沢市 企画政策課",
        ("fujisawa",),
    ),
]


def create_demo_users(municipalities_by_slug: dict[str, Municipality]) -> list[User]:
    users = []
    for login in DEMO_LOGINS:
        user = User(
            username=login.username,
            role=login.role,
            display_name=login.display_name,
            is_staff=login.role == User.Role.OPERATOR_ADMIN,
        )
        # The published passwords still follow the password rule the product enforces.
        validate_password(login.password, user)
        user.set_password(login.password)
        user.save()
        if "*" in login.municipalities:
            user.municipalities.set(municipalities_by_slug.values())
        else:
            user.municipalities.set(
                [
                    municipalities_by_slug[s]
                    for s in login.municipalities
                    if s in municipalities_by_slug
                ]
            )
        if user.is_operator_staff:
            TOTPDevice.objects.create(user=user, name="デモ用認証アプリ", confirmed=True)
        users.append(user)
    return users


def current_totp_code(device: TOTPDevice) -> str:
    """The code an authenticator app would show now for this device."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"
