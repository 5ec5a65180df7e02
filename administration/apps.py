from django.apps import AppConfig


class AdministrationConfig(AppConfig):
    name = "administration"
    verbose_name = "運営管理"

    def ready(self) -> None:
        # Hand-over: services announce a run after commit; the tasks module queues it.
        from administration.handover import signals, tasks

        signals.export_requested.connect(
            tasks.queue_export, dispatch_uid="administration.handover.queue_export"
        )
        signals.deletion_requested.connect(
            tasks.queue_deletion, dispatch_uid="administration.handover.queue_deletion"
        )
