"""Enrolment links for the second factor: tokens and their lookup (writes: crm.services)."""

from __future__ import annotations

import hashlib
import secrets

from django.utils import timezone

from crm.models import EnrolmentLink, User


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def usable_links():
    return EnrolmentLink.objects.filter(
        used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    )


def usable_link(user: User, token: str) -> EnrolmentLink | None:
    """The user's link with this token, if it may still be used; links are per user, so a
    link opened by anyone else (logged in as someone else) finds nothing."""
    if not token or len(token) > 100:
        return None
    return (
        usable_links()
        .filter(user=user, token_hash=hash_token(token))
        .select_related("device")
        .first()
    )
