"""Write a municipality's hand-over export now (the same as 出力開始 on the hand-over page)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from administration.handover import services
from crm.models import Municipality, User


class Command(BaseCommand):
    help = "自治体の全データを引継ぎ用のzip（CSV・JSON Lines・README・SHA-256）に出力する"

    def add_arguments(self, parser) -> None:
        parser.add_argument("code", help="団体コード（6桁）")
        parser.add_argument("--user", help="記録する依頼者（運営管理者のユーザー名）")

    def handle(self, *args, code: str, user: str | None = None, **options) -> None:
        municipality = Municipality.objects.filter(code=code).first()
        if municipality is None:
            raise CommandError(f"団体コード {code} の自治体はありません。")
        actor = User.objects.filter(username=user).first() if user else None
        export = services.handover_export_request(actor=actor, municipality=municipality)
        export = services.handover_export_run(export_id=export.pk)
        path = Path(settings.HANDOVER_ROOT) / export.file_name
        self.stdout.write(f"出力番号 {export.pk}: {path}")
        self.stdout.write(f"行数 {export.rows_written} / SHA-256 {export.sha256}")
