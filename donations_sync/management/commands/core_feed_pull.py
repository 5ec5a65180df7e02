"""Pull the core's change feed now (what the beat task does every CORE_FEED_PULL_SECONDS)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from donations_sync import feed


class Command(BaseCommand):
    help = "基幹システムの変更フィードを取得して反映します。"

    def add_arguments(self, parser) -> None:
        parser.add_argument("--max-pages", type=int, default=None)

    def handle(self, *args, max_pages: int | None = None, **options) -> None:
        result = feed.feed_pull(max_pages=max_pages)
        if result.busy:
            self.stdout.write("別の取得処理が実行中です。")
        elif result.deferred:
            self.stdout.write("前回の失敗のため、次回の取得時刻まで待機中です。")
        counts = "・".join(f"{k} {v}" for k, v in sorted(result.outcomes.items()))
        self.stdout.write(f"{result.pages}ページ・{result.received}件（{counts or 'なし'}）")
        if result.error:
            raise CommandError(result.error)
