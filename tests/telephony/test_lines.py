"""What a line answers with is cached per process; every change still reaches the next call.

Each test first lets a call fill the cache, then changes a rule, then dials again through a signed
webhook. Changes made "by another process" are written with QuerySet.update (no model signals,
so this process hears nothing locally) and announced the way a writing process announces them:
through the shared cache after its commit.
"""

from __future__ import annotations

import time

import pytest
import time_machine
from django.core.cache import cache

from crm.models import MunicipalityPhoneNumber
from telephony import calendar_services, lines
from telephony.models import Call, PhoneSettings
from tests.factories import MunicipalityPhoneNumberFactory
from tests.telephony.conftest import PhoneCall, tokyo

CALLER = "+819012345678"


def says(root) -> str:
    return " ".join(node.text or "" for node in root.iter("Say"))


def dial(twilio, number: str):
    return PhoneCall(twilio, from_=CALLER, to=number).dial_in()


@pytest.fixture
def recheck_every_call(settings):
    settings.TELEPHONY_LINE_RULES_RECHECK_SECONDS = 0


def another_process_commits(write) -> None:
    """A write by another worker: no signal here, only its new version in the shared cache."""
    write()
    cache.set(lines.VERSION_KEY, time.time_ns(), None)


def test_greeting_saved_here_is_used_by_the_next_call(
    twilio, line_a, city_a, open_hours, django_capture_on_commit_callbacks
):
    assert city_a.answer_name in says(dial(twilio, line_a.e164))
    with django_capture_on_commit_callbacks(execute=True):
        phone_settings = city_a.phone_settings
        phone_settings.greeting = "新しいごあいさつです。"
        phone_settings.save()
    assert "新しいごあいさつです。" in says(dial(twilio, line_a.e164))


def test_answer_name_change_of_the_municipality_reaches_the_greeting(
    twilio, line_a, city_a, open_hours, django_capture_on_commit_callbacks
):
    dial(twilio, line_a.e164)
    with django_capture_on_commit_callbacks(execute=True):
        city_a.answer_name = "小樽市ふるさと納税コールセンター（新）"
        city_a.save()
    assert "小樽市ふるさと納税コールセンター（新）" in says(dial(twilio, line_a.e164))


def test_another_process_change_is_picked_up_once_announced(
    twilio, line_a, city_a, open_hours, recheck_every_call
):
    dial(twilio, line_a.e164)
    PhoneSettings.objects.filter(municipality=city_a).update(greeting="別の応答です。")
    # Not announced yet: this process still answers from its copy (the cache is really used).
    assert "別の応答です。" not in says(dial(twilio, line_a.e164))
    another_process_commits(lambda: None)
    assert "別の応答です。" in says(dial(twilio, line_a.e164))


def test_announced_change_is_picked_up_within_the_recheck_interval(
    twilio, line_a, city_a, open_hours, settings
):
    settings.TELEPHONY_LINE_RULES_RECHECK_SECONDS = 0.2
    dial(twilio, line_a.e164)
    another_process_commits(
        lambda: PhoneSettings.objects.filter(municipality=city_a).update(
            greeting="新しい応答です。"
        )
    )
    time.sleep(0.3)  # on purpose: the claim is "within the recheck interval" (0.2 s)
    assert "新しい応答です。" in says(dial(twilio, line_a.e164))


def test_number_moved_to_another_municipality_is_never_answered_for_the_old_one(
    twilio, line_a, city_a, city_b, open_hours, recheck_every_call
):
    line_b = MunicipalityPhoneNumberFactory(municipality=city_b, e164="+81849000002")
    calendar_services.business_calendar_apply_preset(
        municipality=city_b, preset="every_day_including_holidays"
    )
    assert city_a.answer_name in says(dial(twilio, line_a.e164))
    assert city_b.answer_name in says(dial(twilio, line_b.e164))
    # Moved without any announcement at all: the mapping is not cached, so no delay.
    MunicipalityPhoneNumber.objects.filter(pk=line_a.pk).update(municipality=city_b)
    root = dial(twilio, line_a.e164)
    assert city_b.answer_name in says(root)
    assert city_a.answer_name not in says(root)
    assert Call.objects.order_by("-id").first().municipality_id == city_b.pk


def test_new_closure_applies_to_the_next_call(
    twilio, line_a, city_a, django_capture_on_commit_callbacks
):
    with time_machine.travel(tokyo(2025, 6, 14, 10, 0), tick=False):  # a Saturday
        assert dial(twilio, line_a.e164).find("Gather") is not None
        with django_capture_on_commit_callbacks(execute=True):
            calendar_services.business_calendar_apply_preset(municipality=city_a, preset="weekdays")
        closed = dial(twilio, line_a.e164)
    assert closed.find("Record") is not None
    assert "平日（月曜日から金曜日）" in says(closed)


def test_without_the_shared_cache_every_call_reads_the_database(
    twilio, line_a, city_a, open_hours, settings
):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    settings.TELEPHONY_LINE_RULES_RECHECK_SECONDS = 0
    dial(twilio, line_a.e164)
    PhoneSettings.objects.filter(municipality=city_a).update(greeting="キャッシュなしの応答です。")
    assert "キャッシュなしの応答です。" in says(dial(twilio, line_a.e164))
