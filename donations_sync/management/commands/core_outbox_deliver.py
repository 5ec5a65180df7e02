"""Send the outbox's due messages now (what the beat sweep does every CORE_OUTBOX_SWEEP_SECONDS)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from donations_sync import outbox


class Command(BaseCommand):
    help = "基幹システムへの送信待ちを送信します。"

    def add_arguments(self, parser) -> None:
        parser.add_argument("--max-seconds", type=float, default=None)
        parser.add_argument("--batch", type=int, default=None)

    def handle(self, *args, max_seconds: float | None = None, batch: int | None = None, **o):
        result = outbox.outbox_deliver_due(max_seconds=max_seconds, batch=batch)
        counts = "・".join(f"{k} {v}" for k, v in sorted(result.outcomes.items()))
        self.stdout.write(f"{result.claimed}件（{counts or 'なし'}）{result.seconds:.1f}秒")
