"""manage.py issue_enrolment_link USERNAME: a one-time link to enrol an authenticator app.

For the first operator admin of a fresh install, who has nobody to issue one on /staff/
(create the account with ``manage.py createsuperuser`` first).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from crm import services
from crm.models import User


class Command(BaseCommand):
    help = (
        "二要素認証の登録用リンク（一度だけ使える・期限付き）を発行して表示します。"
        "以前に発行した未使用のリンクは無効になります。"
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="利用者がブラウザで開くアドレス（既定 http://127.0.0.1:8000）",
        )

    def handle(self, *args, username: str, base_url: str, **options):
        user = User.objects.filter(username__iexact=username, is_active=True).first()
        if user is None:
            raise CommandError(f"有効な利用者 {username} が見つかりません。")
        try:
            token = services.enrolment_link_issue(actor=None, user=user)
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from exc
        link = base_url.rstrip("/") + reverse("two_factor_enrol", args=[token])
        self.stdout.write(link)
        self.stderr.write(
            f"{user.username} の登録用リンクです（{settings.TWO_FACTOR_ENROLMENT_LINK_HOURS}"
            "時間有効・一度だけ使えます）。本人がこのリンクを開き、パスワードでログインしてから"
            "認証アプリを登録します。"
        )
