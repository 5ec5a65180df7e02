"""City escalation at operator scale: how fast a trigger queues its first notification, and how
long the beat's scan takes with 10,000 open escalations.

Needs a scratch PostgreSQL database of its own (it is migrated and filled here):

    createdb -h 127.0.0.1 -U postgres fz_escalation_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fz_escalation_bench \\
        .venv/bin/python -m benchmarks.escalation [--triggers 200] [--open 10000] [--due 500]

1. Trigger → first notification queued: an agent raises a damaged-gift ticket to 緊急 (or a
   requester's new message arrives) and a rule matches. Timed from the service call to the
   moment the notification rows are committed and handed to the workers (the
   ``notifications_queued`` signal). Target p95 ≤ 1 s.
2. The beat (``escalations_tick``) with ``--open`` open escalations, none due, then ``--due`` of
   them due at once (each due one notifies its next contact and writes its timeline entry).
   Target ≤ 2 s per scan.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from crm.models import CityContact, Municipality, User  # noqa: E402
from escalation import services, signals  # noqa: E402
from escalation.models import (  # noqa: E402
    CityInstruction,
    Escalation,
    EscalationNotification,
    EscalationRule,
    Kind,
)
from tickets import services as ticket_services  # noqa: E402
from tickets.models import Category  # noqa: E402

CODES = ["012033", "342076", "142051", "131148", "082368"]
TARGET_TRIGGER_P95_S = 1.0
TARGET_SCAN_S = 2.0


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def setup() -> tuple[list[Municipality], User]:
    call_command("migrate", verbosity=0)
    CityInstruction.objects.all().delete()
    EscalationNotification.objects.all().delete()
    Escalation.objects.all().delete()
    EscalationRule.objects.all().delete()
    municipalities = []
    for i, code in enumerate(CODES):
        m, _ = Municipality.objects.get_or_create(
            code=code,
            defaults={
                "name": f"ベンチ{i}市",
                "name_kana": "ベンチシ",
                "prefecture": "北海道",
                "answer_name": f"ベンチ{i}市",
            },
        )
        municipalities.append(m)
        if not CityContact.objects.filter(municipality=m).exists():
            for order, label in enumerate(("主担当", "副担当", "課長"), start=1):
                CityContact.objects.create(
                    municipality=m,
                    name=label,
                    department="ふるさと納税係",
                    email=f"c{order}@m{code}.example.jp",
                    phone=f"+8190{code}{order:02d}",
                    escalation_order=order,
                )
        rule = EscalationRule.objects.create(
            municipality=m,
            name="破損（緊急）",
            kind=Kind.DAMAGED_GIFT,
            severities=["urgent"],
            on_open=False,
            on_reclassify=True,
            on_message=True,
            urgent=True,
        )
        rule.categories.set(Category.objects.filter(code="damaged"))
    agent, _ = User.objects.get_or_create(username="bench_escalation_agent")
    agent.municipalities.set(municipalities)
    return municipalities, agent


def bench_triggers(municipalities: list[Municipality], agent: User, n: int) -> list[float]:
    queued_at: list[float] = []

    def on_queued(sender, notification_ids, **kwargs) -> None:
        queued_at.append(time.perf_counter())

    # Measured up to the hand-over to the workers; the sending itself is theirs.
    signals.notifications_queued.receivers = []
    signals.notifications_queued.sender_receivers_cache.clear()
    signals.notifications_queued.connect(on_queued, weak=False)
    timings = []
    for i in range(n):
        m = municipalities[i % len(municipalities)]
        inquiry = ticket_services.inquiry_open(
            actor=agent,
            municipality=m,
            channel="phone",
            title="瓶が割れていた",
            description="破損",
            category="damaged",
        )
        if i % 2:  # a reclassification: the agent raises the ticket to 緊急
            queued_at.clear()
            start = time.perf_counter()
            ticket_services.inquiry_change_severity(actor=agent, inquiry=inquiry, severity="urgent")
        else:  # a requester's new message on an urgent damaged-gift ticket
            ticket_services.inquiry_change_severity(actor=agent, inquiry=inquiry, severity="high")
            EscalationRule.objects.filter(municipality=m).update(on_reclassify=False)
            ticket_services.inquiry_change_severity(actor=agent, inquiry=inquiry, severity="urgent")
            EscalationRule.objects.filter(municipality=m).update(on_reclassify=True)
            queued_at.clear()
            start = time.perf_counter()
            ticket_services.inquiry_add_customer_message(
                inquiry=inquiry, body="まだ返事がありません", channel="email", sender="d@example.jp"
            )
        if not queued_at:
            raise SystemExit("no notification was queued: the rule did not match")
        timings.append(queued_at[0] - start)
    return timings


def fill_open(municipalities: list[Municipality], agent: User, total: int) -> None:
    per = total // len(municipalities)
    now = timezone.now()
    for m in municipalities:
        with transaction.atomic():
            inquiries = ticket_services.inquiries_open(
                actor=agent,
                municipality=m,
                new=[
                    ticket_services.NewInquiry(
                        channel="phone", title="破損", description="", category="damaged"
                    )
                    for _ in range(per)
                ],
            )
        Escalation.objects.bulk_create(
            [
                Escalation(
                    municipality=m,
                    inquiry=inquiry,
                    kind=Kind.DAMAGED_GIFT,
                    source=Escalation.Source.MANUAL,
                    title="破損",
                    opened_at=now,
                    aware_at=now,
                    first_notified_at=now,
                    next_contact_at=now + datetime.timedelta(hours=1 + j % 48),
                    next_action_at=now + datetime.timedelta(hours=1 + j % 48),
                )
                for j, inquiry in enumerate(inquiries)
            ],
            batch_size=2000,
        )


def bench_scan(due: int, repeats: int = 3) -> tuple[list[float], list[float]]:
    idle, busy = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = services.escalations_tick()
        idle.append(time.perf_counter() - start)
        assert result["advanced"] == 0, result
        now = timezone.now()
        ids = list(
            Escalation.objects.filter(status="open")
            .order_by("?")
            .values_list("pk", flat=True)[:due]
        )
        Escalation.objects.filter(pk__in=ids).update(
            next_contact_at=now - datetime.timedelta(minutes=1),
            next_action_at=now - datetime.timedelta(minutes=1),
        )
        start = time.perf_counter()
        result = services.escalations_tick()
        busy.append(time.perf_counter() - start)
        assert result["advanced"] == len(ids), result
    return idle, busy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--triggers", type=int, default=200)
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=500)
    args = parser.parse_args()

    municipalities, agent = setup()
    timings = bench_triggers(municipalities, agent, args.triggers)
    p50, p95 = statistics.median(timings), pct(timings, 95)
    print(
        f"trigger → first notification queued ({len(timings)} triggers): "
        f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {max(timings) * 1000:.1f} ms "
        f"— target p95 ≤ {TARGET_TRIGGER_P95_S:.0f} s: {'ok' if p95 <= TARGET_TRIGGER_P95_S else 'MISSED'}"
    )

    Escalation.objects.all().delete()
    fill_open(municipalities, agent, args.open)
    open_count = Escalation.objects.filter(status="open").count()
    idle, busy = bench_scan(args.due)
    print(
        f"beat scan, {open_count} open, none due: max {max(idle) * 1000:.1f} ms "
        f"— target ≤ {TARGET_SCAN_S:.0f} s: {'ok' if max(idle) <= TARGET_SCAN_S else 'MISSED'}"
    )
    print(
        f"beat scan, {open_count} open, {args.due} due (each notifies its next contact): "
        f"max {max(busy) * 1000:.1f} ms, {max(busy) / args.due * 1000:.2f} ms per due escalation "
        f"— target ≤ {TARGET_SCAN_S:.0f} s: {'ok' if max(busy) <= TARGET_SCAN_S else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
