"""Generate monthly reports by hand (beat does it on the 1st): ``monthly_reports --month 2026-11``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from analysis import services
from analysis.periods import Month
from crm.models import Municipality


class Command(BaseCommand):
    help = "Generate (or refresh the drafts of) the monthly reports of a month; submitted ones are kept."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--month", help="YYYY-MM (default: last month, Asia/Tokyo)")
        parser.add_argument("--municipality", help="municipality code (default: every one)")

    def handle(self, *args, **options) -> None:
        month = (
            Month.parse(options["month"])
            if options["month"]
            else Month.containing(timezone.now()).previous()
        )
        if month is None:
            raise CommandError("--month は YYYY-MM の形で指定してください。")
        municipalities = Municipality.objects.order_by("code")
        if options["municipality"]:
            municipalities = municipalities.filter(code=options["municipality"])
            if not municipalities.exists():
                raise CommandError(f"自治体コードが見つかりません: {options['municipality']}")
        for municipality in municipalities:
            report = services.report_generate(municipality=municipality, month=month)
            self.stdout.write(
                f"{municipality.name} {month.label()}: {report.get_state_display()}"
                f"（問合せ {report.data['inquiries']['total']}件）"
            )
