"""What a municipality's line answers with — greeting, menu, queue bounds, calendar — cached.

Every inbound call needs these, and they change a few times a year, so each process keeps a copy
per municipality. Which municipality a dialled number belongs to is *not* cached: the inbound
webhook reads it from the database every time (one indexed row), so a number moved to another
municipality is never answered with the old name.

Invalidation: a save or delete of any rule (phone settings, weekly hours, calendar exceptions, the
municipality's answer name) bumps a version number in the shared cache (Redis) once the write has
committed, and the writing process drops its copies at once. Every other process compares its
copies' version with the shared one at most every ``TELEPHONY_LINE_RULES_RECHECK_SECONDS``
(optional setting, 1 s) and reloads when they differ: a changed greeting or closure reaches all
processes within about a second. (Reading the version on every call cost more CPU than the rest
of the inbound webhook's database work.) The version is read *before* the rules are loaded, so a
copy loaded while a write commits is stamped with the old version and reloaded after the next
check. Writes that bypass model signals (``bulk_create``, ``QuerySet.update``, raw SQL) must call
:func:`rules_changed` themselves; as a backstop no copy is used for longer than
``MAX_AGE_SECONDS``. When the shared cache cannot be read, nothing is cached and every call reads
the database.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from telephony.calendar import BusinessCalendar
from telephony.models import PhoneSettings

logger = logging.getLogger("telephony")

VERSION_KEY = "telephony:line-rules-version"
MAX_AGE_SECONDS = 300


@dataclass(frozen=True)
class LineRules:
    municipality_id: int
    greeting: str
    settings: PhoneSettings  # a detached copy: read it, never save it
    calendar: BusinessCalendar
    # Said instead of the menu while the municipality is suspended; empty otherwise.
    suspended_notice: str = ""


_lock = threading.Lock()
_copies: dict[int, tuple[object, float, LineRules]] = {}
_checked: list = [None, float("-inf")]  # the shared version last read, and when


def _load(municipality_id: int) -> LineRules:
    phone_settings = (
        PhoneSettings.objects.select_related("municipality")
        .filter(municipality_id=municipality_id)
        .first()
    )
    if phone_settings is None:
        from crm.models import Municipality

        # A municipality without its own settings answers with the defaults.
        phone_settings = PhoneSettings(municipality=Municipality.objects.get(pk=municipality_id))
    return LineRules(
        municipality_id=municipality_id,
        greeting=phone_settings.greeting_text(),
        settings=phone_settings,
        calendar=BusinessCalendar.for_municipality(municipality_id),
        suspended_notice=(
            phone_settings.municipality.suspended_notice
            if phone_settings.municipality.is_suspended
            else ""
        ),
    )


def _current_version() -> object | None:
    try:
        version = cache.get(VERSION_KEY)
        if version is None:
            # First use, or the cache was flushed: a new value, so no copy made before the flush
            # can match it.
            cache.add(VERSION_KEY, time.time_ns(), None)
            version = cache.get(VERSION_KEY)
        return version
    except Exception:  # the shared cache is down: answer from the database
        logger.warning("Line rules version unreadable; not caching", exc_info=True)
        return None


def _version(now: float) -> object | None:
    if now - _checked[1] < getattr(settings, "TELEPHONY_LINE_RULES_RECHECK_SECONDS", 1.0):
        return _checked[0]
    version = _current_version()
    _checked[:] = [version, now]
    return version


def line_rules(municipality_id: int) -> LineRules:
    now = time.monotonic()
    version = _version(now)
    hit = _copies.get(municipality_id)
    if (
        version is not None
        and hit is not None
        and hit[0] == version
        and now - hit[1] < MAX_AGE_SECONDS
    ):
        return hit[2]
    rules = _load(municipality_id)
    if version is not None:
        with _lock:
            _copies[municipality_id] = (version, now, rules)
    return rules


def publish_change() -> None:
    """Every process, this one included, reloads its copies (run once the write committed)."""
    with _lock:
        _copies.clear()
        _checked[1] = float("-inf")
    try:
        cache.set(VERSION_KEY, time.time_ns(), None)
    except Exception:
        logger.exception("Could not publish a change of line rules")


def rules_changed() -> None:
    """A rule was written: this process forgets its copies now, every process after the commit."""
    with _lock:
        _copies.clear()
        _checked[1] = float("-inf")
    transaction.on_commit(publish_change)
