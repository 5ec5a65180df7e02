"""A logged-in session for a benchmark's user, as a real log-in with a verified TOTP device
leaves it, so pages and websockets are measured behind the same checks a person passes."""

from __future__ import annotations

from typing import Any


def verified_session_key(user: Any, *, device_name: str = "bench") -> str:
    """The key of a new database session for ``user`` that has passed two-factor."""
    from django.contrib.sessions.backends.db import SessionStore
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name=device_name, defaults={"confirmed": True}
    )
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.create()
    return session.session_key
