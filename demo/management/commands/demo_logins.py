"""manage.py demo_logins: the demo log-ins, their passwords and roles, and how to get a code."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from crm.models import User
from demo.users import DEMO_LOGINS


class Command(BaseCommand):
    help = "デモ用ログイン（利用者名・パスワード・役割・担当自治体）を表示します。"

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("本番モードではデモ用ログインを表示できません。")
        users = {
            u.username: u
            for u in User.objects.filter(
                username__in=[d.username for d in DEMO_LOGINS]
            ).prefetch_related("municipalities")
        }
        if not users:
            self.stdout.write(
                "デモ用ログインはまだありません（manage.py seed_demo で作成します）。"
            )
            return
        rows = [("利用者名", "パスワード", "役割", "担当自治体")]
        for login in DEMO_LOGINS:
            user = users.get(login.username)
            if user is None:
                continue
            if user.role == User.Role.OPERATOR_ADMIN:
                scope = "全自治体"
            else:
                scope = "・".join(m.name for m in user.municipalities.all()) or "なし"
            rows.append((login.username, login.password, user.get_role_display(), scope))
        widths = [max(_width(r[i]) for r in rows) for i in range(3)]
        for row in rows:
            cells = [row[i] + " " * (widths[i] - _width(row[i])) for i in range(3)]
            self.stdout.write("  " + "  ".join(cells) + "  " + row[3])
        self.stdout.write("")
        self.stdout.write(
            "  運営側（自治体職員以外）は二要素認証の確認コードが必要です。デモでは次で表示します:"
        )
        self.stdout.write("    .venv/bin/python manage.py totp_code <利用者名>")


def _width(text: str) -> int:
    """Display width: full-width characters take two columns."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)
