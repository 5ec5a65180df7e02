"""Secrets kept in the database (mailbox passwords), encrypted at rest.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with the keys in
``FIELD_ENCRYPTION_KEYS``: the first encrypts, all decrypt, so a key can be rotated by putting a
new one first and re-saving (``manage.py rotate_field_keys``). Without configured keys one
derived from SECRET_KEY encrypts, so a development database works out of the box; it stays the
last key to decrypt with, so values written before keys were configured can be rotated too.
A database dump therefore no longer hands out the municipalities' mail passwords.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

PREFIX = "fernet:"


@cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    derived = hashlib.sha256(b"field-encryption:" + secret_key.encode()).digest()
    keys = (*keys, base64.urlsafe_b64encode(derived).decode())
    return MultiFernet([Fernet(k) for k in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(plain: str) -> str:
    return PREFIX + _current().encrypt(plain.encode()).decode() if plain else ""


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # written before encryption was introduced; encrypted on next save
    try:
        return _current().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise ValueError("暗号化された値を復号できません（鍵が違います）") from exc


class EncryptedCharField(models.TextField):
    """A short secret, stored encrypted; reads give the plain text."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return None if value is None else encrypt(value)
