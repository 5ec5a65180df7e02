"""Delete everything of a municipality after its hand-over, or resume a deletion that stopped."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from administration.handover import services
from crm.models import Municipality, User


class Command(BaseCommand):
    help = "引継ぎ後に自治体の全データを削除し、削除証明書（PDF）を作る（--resume で再開）"

    def add_arguments(self, parser) -> None:
        parser.add_argument("code", nargs="?", help="団体コード（6桁）")
        parser.add_argument("--confirm", default="", help="確認のため団体コードをもう一度")
        parser.add_argument("--override-reason", default="", help="出力なしで削除する理由")
        parser.add_argument("--user", help="記録する実施者（運営管理者のユーザー名）")
        parser.add_argument("--resume", type=int, help="止まった削除の番号（続きから実行）")

    def handle(self, *args, code=None, confirm="", override_reason="", user=None, resume=None, **o):
        if resume:
            run = services.handover_deletion_run(deletion_id=resume)
        else:
            municipality = Municipality.objects.filter(code=code or "").first()
            if municipality is None:
                raise CommandError(f"団体コード {code} の自治体はありません。")
            actor = User.objects.filter(username=user).first() if user else None
            try:
                run = services.handover_deletion_request(
                    actor=actor,
                    municipality=municipality,
                    confirm_code=confirm,
                    override_reason=override_reason,
                    actor_name=user or "管理コマンド",
                )
            except ValidationError as exc:
                raise CommandError(exc.messages[0]) from exc
            run = services.handover_deletion_run(deletion_id=run.pk)
        run.refresh_from_db()
        if run.status != "done":
            raise CommandError(f"削除番号 {run.pk} は完了していません: {run.error}")
        self.stdout.write(f"削除番号 {run.pk}: {run.rows_deleted}行を削除")
        for label, count in sorted(run.deleted_counts.items()):
            self.stdout.write(f"  {label}: {count}")
        self.stdout.write(f"削除証明書: {Path(settings.HANDOVER_ROOT) / run.certificate_name}")
