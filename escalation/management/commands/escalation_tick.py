"""One beat of the escalation clocks by hand (what Celery beat runs every 30 seconds)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from escalation import services


class Command(BaseCommand):
    help = "Advance due escalations (next contact, deadlines) and send waiting notifications."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--clusters", action="store_true", help="also look for clusters")

    def handle(self, *args, **options) -> None:
        result = services.escalations_tick()
        if options["clusters"]:
            result["clusters"] = len(services.clusters_detect())
        self.stdout.write(" ".join(f"{k}={v}" for k, v in result.items()))
