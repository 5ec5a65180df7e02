"""Demo city escalation for ``manage.py seed_demo``: each municipality's rules, its first contact
linked to the demo city official, and a few reports on damaged-gift tickets (one acknowledged
with the city's instruction, one still waiting). Personal-data incidents are reported by hand
(「市へ報告」, kind 個人情報の事故), which puts them on the 60-minute clock."""

from __future__ import annotations

import datetime
import random
from typing import Any

from crm.models import CityContact, Municipality, User
from demo.tickets import DemoClock, demo_now
from escalation import services
from escalation.models import EscalationRule, Kind
from tickets.models import Category, Inquiry

RULES = [
    # (name, kind, categories, severities, extra)
    ("破損・傷み（緊急）", Kind.DAMAGED_GIFT, ["damaged"], ["urgent"], {"urgent": True}),
    ("口コミ対応", Kind.PORTAL_REVIEW, ["portal_review"], [], {"notify_provider": True}),
    ("破損の集中", Kind.CLUSTER, ["damaged"], [], {"cluster_min_count": 5}),
]


def seed_demo(*, rng: random.Random, today: datetime.date, stdout: Any) -> dict[str, int]:
    end = demo_now(today)
    clock = DemoClock(end)
    with clock.running():
        return _seed(rng, clock, end)


def _seed(rng: random.Random, clock: DemoClock, end: datetime.datetime) -> dict[str, int]:
    rules = escalations = 0
    for municipality in Municipality.objects.order_by("code"):
        for name, kind, categories, severities, extra in RULES:
            rule = EscalationRule.objects.create(
                municipality=municipality,
                name=name,
                kind=kind,
                severities=severities,
                **extra,
            )
            rule.categories.set(Category.objects.filter(code__in=categories))
            rules += 1
        official = (
            User.objects.filter(role=User.Role.CITY_OFFICIAL, municipalities=municipality)
            .order_by("pk")
            .first()
        )
        primary = CityContact.objects.filter(municipality=municipality).order_by("escalation_order")
        if official is not None:
            primary.filter(pk=primary.values("pk")[:1]).update(user=official)
        damaged = list(
            Inquiry.objects.filter(municipality=municipality, category__code="damaged")
            .select_related("ticket")
            .order_by("-created_at")[:2]
        )
        for index, inquiry in enumerate(damaged):
            clock.set(min(end, inquiry.created_at + datetime.timedelta(minutes=rng.randint(5, 30))))
            escalation = services.escalation_open(
                actor=None,
                inquiry=inquiry,
                kind=Kind.DAMAGED_GIFT,
                source="manual",
                reason="返礼品が破損して届いたとの申出。写真を受領済み。",
                proposed_response="事業者に代替品の発送を依頼します。",
            )
            escalations += 1
            if index == 0 and official is not None:
                clock.set(min(end, clock.at + datetime.timedelta(minutes=rng.randint(10, 50))))
                services.escalation_instruct(
                    actor=official,
                    escalation=escalation,
                    body="代替品の発送をお願いします。事業者へは市からも連絡します。",
                )
    return {"escalation_rules": rules, "escalations": escalations}
