"""Recompute the due times of open tickets, after service-level targets or calendars changed
(new targets otherwise apply to tickets opened or reclassified from then on)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from telephony.sla import inquiry_due_times_refresh
from tickets.selectors import open_inquiry_ids


class Command(BaseCommand):
    help = "未完了の問合せの対応期限を、現在の目標と受付時間で計算し直します。"

    def add_arguments(self, parser) -> None:
        parser.add_argument("--municipality", type=int, help="この自治体IDの問合せだけ")
        parser.add_argument("--batch", type=int, default=1000)

    def handle(self, *args, municipality: int | None, batch: int, **options) -> None:
        done = 0
        for ids in open_inquiry_ids(municipality_id=municipality, batch=batch):
            inquiry_due_times_refresh(inquiry_ids=ids)
            done += len(ids)
        self.stdout.write(f"{done}件の対応期限を計算しました。")
