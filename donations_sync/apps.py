from django.apps import AppConfig


class DonationsSyncConfig(AppConfig):
    name = "donations_sync"
    verbose_name = "寄附・配送データ"

    def ready(self) -> None:
        from donations_sync import tasks
        from donations_sync.live import announce_import_progress
        from donations_sync.models import ImportRun, OutboxMessage
        from donations_sync.signals import (
            import_run_progressed,
            import_run_queued,
            outbox_message_queued,
        )

        import_run_queued.connect(
            tasks.import_run_queued, sender=ImportRun, weak=False, dispatch_uid="import-run-queued"
        )
        outbox_message_queued.connect(
            tasks.outbox_message_queued,
            sender=OutboxMessage,
            weak=False,
            dispatch_uid="outbox-message-queued",
        )
        # Open run pages follow the import (pushed after the progress commits).
        import_run_progressed.connect(
            announce_import_progress, sender=ImportRun, dispatch_uid="import-progress-push"
        )
        # Registers the beat task (autodiscovery only finds modules named tasks.py).
        from donations_sync import feed_tasks  # noqa: F401
