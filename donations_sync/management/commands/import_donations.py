"""manage.py import_donations FILE --municipality CODE --source STYLE: import a portal or
management-system export into one municipality's mirror, with a progress line."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from crm.models import Municipality
from donations_sync import services
from donations_sync.imports import ImportFileError
from donations_sync.models import ImportMapping, ImportRun, ImportStyle

SHOWN_REJECTIONS = 20


class Command(BaseCommand):
    help = (
        "寄附データのCSV（ふるさとチョイス・Furusato360・楽天）を自治体の寄附データに取り込みます。"
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="取り込むCSVファイル")
        parser.add_argument("--municipality", required=True, help="自治体コード（6桁）")
        parser.add_argument("--source", required=True, choices=[s.value for s in ImportStyle])
        parser.add_argument(
            "--encoding", default="", help="文字コード（例: cp932, utf-8）。省略時は自動判定"
        )
        parser.add_argument("--mapping", default="", help="保存済みの列の対応表の名前")
        parser.add_argument(
            "--background", action="store_true", help="ワーカー（Celery）で実行し、すぐ戻ります"
        )

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"ファイルがありません：{path}")
        municipality = Municipality.objects.filter(code=options["municipality"]).first()
        if municipality is None:
            raise CommandError(f"自治体コード {options['municipality']} の自治体がありません")
        saved = None
        if options["mapping"]:
            saved = ImportMapping.objects.filter(
                municipality=municipality, name=options["mapping"]
            ).first()
            if saved is None:
                raise CommandError(f"列の対応表「{options['mapping']}」がありません")
        background = options["background"]
        try:
            with path.open("rb") as binary:
                run = services.import_run_create(
                    municipality=municipality,
                    style=options["source"],
                    file=binary,
                    original_name=path.name,
                    saved_mapping=saved,
                    encoding=options["encoding"],
                    queue=background,
                )
        except ImportFileError as error:
            raise CommandError(error.message) from None
        if background:
            self.stdout.write(f"取込 {run.pk} を登録しました（ワーカーで実行します）。")
            return
        progress = _Progress(run.size)
        run = services.import_run_execute(run_id=run.pk, progress=progress.show)
        progress.end()
        self._report(run, time.monotonic() - progress.began)
        if run.status == ImportRun.Status.FAILED:
            raise CommandError(run.error)

    def _report(self, run: ImportRun, elapsed: float) -> None:
        out = self.stdout.write
        out(f"取込 {run.pk}：{run.get_status_display()}（文字コード {run.detected_encoding}）")
        out(
            f"新規 {run.imported:,}　更新 {run.updated:,}　変更なし {run.unchanged:,}　"
            f"取込不可 {run.rejected:,}　要確認 {run.needs_callback:,}　"
            f"（{run.rows_read:,}行、{elapsed:.1f}秒、{run.rows_read / max(elapsed, 1e-9):,.0f}行/秒）"
        )
        if run.unknown_columns:
            out(f"対応表にない列：{'、'.join(run.unknown_columns)}")
        rejections = list(run.rejections.order_by("line")[:SHOWN_REJECTIONS])
        if rejections:
            out("取込不可の行（先頭）：")
            for r in rejections:
                column = f"［{r.column}］" if r.column else ""
                out(f"  {r.line}行目{column} {r.reason}")
            if run.rejected > len(rejections):
                out(f"  …ほか {run.rejected - len(rejections):,}行")


class _Progress:
    """One stderr line: rows, rows/s, share of the file and ETA (from bytes read)."""

    def __init__(self, size: int):
        self.size = size
        self.began = time.monotonic()
        self.tty = sys.stderr.isatty()

    def show(self, run: ImportRun) -> None:
        elapsed = max(time.monotonic() - self.began, 1e-9)
        rate = run.rows_read / elapsed
        share = min(run.bytes_read / self.size, 1.0) if self.size else 1.0
        eta = elapsed / share - elapsed if share > 0 else 0
        line = (
            f"{run.rows_read:>10,}行  {rate:>8,.0f}行/秒  {share:6.1%}  "
            f"残り約{int(eta) // 60}分{int(eta) % 60:02d}秒"
        )
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        sys.stderr.flush()

    def end(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
