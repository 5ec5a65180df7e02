"""A session's life beyond HTTP: the idle rule, and its websockets following log-out and access
changes.

Every websocket of a signed-in user also listens on the group ``user.<id>``. Whatever ends a
session or narrows what someone may do sends, after commit, one event to that group:

- ``session.revoked`` (log-out, idle expiry) names the ended session by a digest of its key, so
  that session's sockets close at once while the user's other sessions re-check themselves;
- ``access.changed`` (deactivation, new password, role, municipalities, TOTP devices removed)
  makes every socket of the user check its session again against the database
  (``socket_session``) and close with 4403 or re-scope to what the user may still see.

Saves that bypass model signals (``QuerySet.update``, raw SQL) do not reach open sockets; they
still fail the next check each socket makes (at its idle deadline, or the next event).

Idle time: real user actions (page loads, form posts, typing a search) count as activity;
requests the page makes on its own (the console's refresh every 30 s or after a push, the
softphone's token renewal) carry ``X-Background-Refresh: 1`` and do not, otherwise an open tab
would never go idle. Websocket traffic never counts. A socket checks its session again at the
session's idle deadline, not before; if no page has extended it by then the session is ended
(audited as ``IDLE_TIMEOUT``, as over HTTP) and its sockets close.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.auth.signals import user_logged_out
from django.core.cache import cache
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from crm.access import passed_two_factor
from crm.audit import audit_record
from crm.push import push_many_after_commit

if TYPE_CHECKING:
    from django.contrib.sessions.backends.base import SessionBase

    from crm.models import User

logger = logging.getLogger(__name__)

LAST_SEEN_KEY = "last_seen_at"
BACKGROUND_HEADER = "HTTP_X_BACKGROUND_REFRESH"
# User fields whose change can end or narrow what a signed-in session may do.
ACCESS_FIELDS = ("is_active", "password", "role")


# --- The idle rule ----------------------------------------------------------------------------


def idle_limit_seconds() -> float:
    return float(settings.SESSION_IDLE_TIMEOUT_MINUTES) * 60


def idle_deadline(session: Any, *, since: float) -> float:
    """When the session goes idle: its last user action (``since`` if none is recorded yet)
    plus the limit, in epoch seconds."""
    last_seen = session.get(LAST_SEEN_KEY)
    return (float(last_seen) if last_seen is not None else since) + idle_limit_seconds()


def is_background(request: HttpRequest) -> bool:
    """A request the page made on its own, not a user action."""
    return request.META.get(BACKGROUND_HEADER) == "1"


# --- Telling open sockets ---------------------------------------------------------------------


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def session_digest(session_key: str | None) -> str:
    """Names a session on the channel layer without putting its key (a credential) there."""
    return hashlib.sha256((session_key or "").encode()).hexdigest()[:32]


def session_revoked(*, user_id: int, session_key: str | None) -> None:
    push_many_after_commit(
        [
            (
                user_group(user_id),
                {"type": "session.revoked", "session": session_digest(session_key)},
            )
        ]
    )


def access_changed(*, user_ids: Any) -> None:
    push_many_after_commit(
        [(user_group(pk), {"type": "access.changed"}) for pk in sorted(set(user_ids or ()))]
    )


# --- Checking a websocket's session -----------------------------------------------------------


@dataclass(frozen=True)
class SocketSession:
    user: User
    idle_deadline: float


def _session_store(session_key: str) -> SessionBase:
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def _session_user(session: SessionBase) -> User | None:
    """Django's own rule for whose session this is: the backend still knows an active user and
    the session's auth hash matches their password (a new password ends other sessions)."""
    try:
        user_id = session[SESSION_KEY]
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = load_backend(backend_path).get_user(user_id)
    if user is None or not hasattr(user, "get_session_auth_hash"):
        return None
    session_hash = session.get(HASH_SESSION_KEY) or ""
    hashes = [user.get_session_auth_hash()] + [
        user._get_session_auth_hash(secret=secret) for secret in settings.SECRET_KEY_FALLBACKS
    ]
    if not any(constant_time_compare(session_hash, h) for h in hashes):
        return None
    return user


def socket_session(
    session_key: str | None,
    *,
    opened_at: float,
    ip_address: str | None = None,
    user_agent: str = "",
) -> SocketSession | None:
    """The user a websocket may serve now, or None: the session still exists, is its user's,
    the user is active, has passed two-factor in it where required, and is not idle. A session
    found idle is ended here as HTTP would end it."""
    if not session_key:
        return None
    session = _session_store(session_key)
    user = _session_user(session)
    if user is None or not passed_two_factor(user, session):
        return None
    deadline = idle_deadline(session, since=opened_at)
    if time.time() > deadline:
        _end_idle_session(session, user, ip_address=ip_address, user_agent=user_agent)
        return None
    return SocketSession(user=user, idle_deadline=deadline)


def _end_idle_session(
    session: SessionBase, user: User, *, ip_address: str | None, user_agent: str
) -> None:
    from crm.models import AuditLog

    session_key = session.session_key
    # Each socket of the session reaches its deadline: one of them ends it, once.
    if not cache.add(f"crm:idle-ended:{session_digest(session_key)}", 1, 600):
        return
    audit_record(
        action=AuditLog.Action.IDLE_TIMEOUT,
        request=None,
        user=user,
        ip_address=ip_address,
        user_agent=user_agent,
        via="websocket",
    )
    session.delete()
    session_revoked(user_id=user.pk, session_key=session_key)


# --- What ends a session or changes access ----------------------------------------------------


def user_sessions_end(*, user_id: int, keep_session_key: str | None = None) -> int:
    """End every stored session of ``user_id`` (but ``keep_session_key``): deactivation, an
    admin's password reset, "log out everywhere". Each ended session's sockets close after the
    commit. Returns how many sessions were ended."""
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    ended = 0
    for row in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if row.session_key == keep_session_key:
            continue
        if str(row.get_decoded().get(SESSION_KEY)) != str(user_id):
            continue
        row.delete()
        session_revoked(user_id=user_id, session_key=row.session_key)
        ended += 1
    access_changed(user_ids=[user_id])
    return ended


def _on_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    # Sent before Django flushes the session, so the digest names the session being ended.
    if user is not None and getattr(user, "pk", None) and request is not None:
        session_revoked(user_id=user.pk, session_key=request.session.session_key)


def _remember_access_fields(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    instance._access_before = None
    update_fields = kwargs.get("update_fields")
    if raw or instance.pk is None:
        return
    if update_fields is not None and not set(ACCESS_FIELDS) & set(update_fields):
        return  # e.g. last_login at every log-in: no extra query
    instance._access_before = (
        sender.objects.filter(pk=instance.pk).values_list(*ACCESS_FIELDS).first()
    )


def _user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    before = instance.__dict__.pop("_access_before", None)
    if created or before is None:
        return
    if tuple(before) != tuple(getattr(instance, f) for f in ACCESS_FIELDS):
        access_changed(user_ids=[instance.pk])


def _municipalities_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    if reverse and action == "pre_clear":  # municipality.staff.clear(): whose, before it goes
        instance._cleared_staff_ids = list(instance.staff.values_list("pk", flat=True))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        user_ids = [instance.pk]
    elif action == "post_clear":
        user_ids = instance.__dict__.pop("_cleared_staff_ids", [])
    else:
        user_ids = pk_set
    access_changed(user_ids=user_ids)


def _device_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    access_changed(user_ids=[instance.user_id])


def _device_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    # A device taken back to unconfirmed no longer vouches for the sessions it verified.
    if not created and not instance.confirmed:
        access_changed(user_ids=[instance.user_id])


def connect_receivers() -> None:
    from django_otp.models import Device

    from crm.models import User

    user_logged_out.connect(_on_logout, dispatch_uid="crm.sessions.logout")
    pre_save.connect(_remember_access_fields, sender=User, dispatch_uid="crm.sessions.user_pre")
    post_save.connect(_user_saved, sender=User, dispatch_uid="crm.sessions.user_post")
    m2m_changed.connect(
        _municipalities_changed,
        sender=User.municipalities.through,
        dispatch_uid="crm.sessions.municipalities",
    )
    for model in apps.get_models():
        if issubclass(model, Device):
            uid = f"crm.sessions.device.{model._meta.label_lower}"
            post_delete.connect(_device_deleted, sender=model, dispatch_uid=uid + ".delete")
            post_save.connect(_device_saved, sender=model, dispatch_uid=uid + ".save")
