"""Apply the retention policies now (beat runs the same daily)."""

from __future__ import annotations

from dataclasses import asdict

from django.core.management.base import BaseCommand

from administration.handover import retention
from crm.models import Municipality


class Command(BaseCommand):
    help = "保存期間を過ぎた通話録音・メール原文・添付ファイル・完了した問合せを削除する"

    def add_arguments(self, parser) -> None:
        parser.add_argument("--municipality", help="団体コード（省略時はすべて）")

    def handle(self, *args, municipality: str | None = None, **options) -> None:
        cities = Municipality.objects.all()
        if municipality:
            cities = cities.filter(code=municipality)
        for city in cities:
            result = retention.purge_municipality(municipality=city)
            self.stdout.write(f"{city.code} {city.name}: {asdict(result)}")
