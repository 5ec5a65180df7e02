"""manage.py rotate_field_keys: re-encrypt stored secrets with the first FIELD_ENCRYPTION_KEYS key.

Put the new key first in FIELD_ENCRYPTION_KEYS (keep the old one after it), run this, then the
old key may be removed.
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from crm.secrets import EncryptedCharField


class Command(BaseCommand):
    help = "保存されている秘密情報（メールボックスのパスワード等）を現在の鍵で暗号化し直します"

    def handle(self, *args, **options):
        total = 0
        with transaction.atomic():
            for model in apps.get_models():
                fields = [f.name for f in model._meta.fields if isinstance(f, EncryptedCharField)]
                if not fields:
                    continue
                for row in model._base_manager.select_for_update().only("pk", *fields):
                    model._base_manager.filter(pk=row.pk).update(
                        **{name: getattr(row, name) for name in fields}
                    )
                    total += 1
        self.stdout.write(f"re-encrypted {total} rows")
