"""Mailbox passwords are stored encrypted; agents' code reads them in plain text."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from crm.models import MunicipalityEmailAddress
from tickets.mail.models import Mailbox

pytestmark = pytest.mark.django_db


def _stored(box: Mailbox) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT password FROM {Mailbox._meta.db_table} WHERE id = %s", [box.pk])
        return cursor.fetchone()[0]


@pytest.fixture
def box(city_a):
    address = MunicipalityEmailAddress.objects.create(municipality=city_a, address="a@example.jp")
    return Mailbox.objects.create(address=address, password="imap-p@ss-髙")


def test_the_database_holds_no_plain_password(box):
    stored = _stored(box)
    assert "imap-p@ss" not in stored and stored.startswith("fernet:")
    assert Mailbox.objects.get(pk=box.pk).password == "imap-p@ss-髙"


def test_a_password_stored_before_encryption_is_still_read(box):
    Mailbox.objects.filter(pk=box.pk).update(password="x")  # encrypted as written
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Mailbox._meta.db_table} SET password = 'legacy' WHERE id = %s", [box.pk]
        )
    assert Mailbox.objects.get(pk=box.pk).password == "legacy"


def test_keys_rotate_and_an_unknown_key_is_refused(box, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    call_command("rotate_field_keys", stdout=io.StringIO())
    under_old = _stored(box)
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert Mailbox.objects.get(pk=box.pk).password == "imap-p@ss-髙"  # old key still reads
    call_command("rotate_field_keys", stdout=io.StringIO())
    assert _stored(box) != under_old
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert Mailbox.objects.get(pk=box.pk).password == "imap-p@ss-髙"
    settings.FIELD_ENCRYPTION_KEYS = [old]
    with pytest.raises(ValueError, match="復号できません"):
        Mailbox.objects.get(pk=box.pk)
    settings.SECRET_KEY = "another-secret-key-for-another-installation"
    settings.FIELD_ENCRYPTION_KEYS = []
    Mailbox.objects.filter(pk=box.pk).update(password="dev")
    settings.SECRET_KEY = "yet-another-installation"
    with pytest.raises(ValueError, match="復号できません"):
        Mailbox.objects.get(pk=box.pk)
