"""manage.py seed_demo [--if-empty] [--seed N] [--today YYYY-MM-DD] [--scale …]"""

from __future__ import annotations

import datetime
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from crm.models import Municipality
from demo import scale
from demo.seed import DEFAULT_SEED, DEMO_DONORS_PER_CITY, seed_demo


class Command(BaseCommand):
    help = (
        "合成データを投入します。既定はデモ用（3自治体）、--scale は運用規模"
        "（PostgreSQL・30自治体・寄附者150万件）です。"
    )

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="自治体が既にあれば何もしない")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="乱数の種（既定固定）")
        parser.add_argument(
            "--today",
            type=datetime.date.fromisoformat,
            default=None,
            help="日付の基準日 YYYY-MM-DD（既定は今日）。種と基準日が同じなら同じデータになる",
        )
        parser.add_argument(
            "--donors-per-city",
            type=int,
            default=DEMO_DONORS_PER_CITY,
            help="デモの寄附者数/自治体",
        )
        parser.add_argument("--scale", action="store_true", help="運用規模のデータを COPY で投入")
        parser.add_argument("--municipalities", type=int, default=scale.DEFAULT_MUNICIPALITIES)
        parser.add_argument("--donors", type=int, default=scale.DEFAULT_DONORS)
        parser.add_argument("--donations", type=int, default=scale.DEFAULT_DONATIONS)
        parser.add_argument("--shipments", type=int, default=scale.DEFAULT_SHIPMENTS)
        parser.add_argument(
            "--rebuild-indexes",
            action="store_true",
            default=None,
            help="--scale で件数が少なくても索引を投入後に作り直す（既定は寄附者10万件以上で作り直す）",
        )
        parser.add_argument("--no-users", action="store_true", help="デモ用ログインを作らない")

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError(
                "本番モードでは合成データを投入できません（デモ用パスワードが公開されています）。"
            )
        if Municipality.objects.exists():
            if options["if_empty"]:
                self.stdout.write("自治体が既に登録されているため、投入しませんでした。")
                return
            raise CommandError("自治体が既に登録されています。空のデータベースで実行してください。")
        started = time.monotonic()
        if options["scale"]:
            counts = scale.load(
                seed=options["seed"],
                today=options["today"],
                municipalities=options["municipalities"],
                donors=options["donors"],
                donations=options["donations"],
                shipments=options["shipments"],
                with_users=not options["no_users"],
                rebuild_indexes=options["rebuild_indexes"],
                progress=self.stdout.write if options["verbosity"] >= 1 else None,
            )
        else:
            counts = seed_demo(
                seed=options["seed"],
                today=options["today"],
                donors_per_city=options["donors_per_city"],
                with_users=not options["no_users"],
                stdout=self.stdout,
            )
        elapsed = time.monotonic() - started
        summary = "、".join(f"{k} {v:,}" for k, v in counts.items())
        self.stdout.write(self.style.SUCCESS(f"投入しました（{elapsed:.1f}秒）: {summary}"))
