"""manage.py totp_code <username>: the current TOTP code of a demo user's device."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice

from demo.users import current_totp_code


class Command(BaseCommand):
    help = "デモ用: 利用者の認証アプリに今表示される確認コード（6桁）を表示します。"

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        # Printing second factors defeats them; only the demo and test databases may do it.
        if settings.PRODUCTION:
            raise CommandError("本番モードでは確認コードを表示できません。")
        device = (
            TOTPDevice.objects.filter(user__username__iexact=username, confirmed=True)
            .order_by("id")
            .first()
        )
        if device is None:
            raise CommandError(f"{username} には確認済みの認証アプリが登録されていません。")
        self.stdout.write(current_totp_code(device))
