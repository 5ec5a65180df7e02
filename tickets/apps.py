from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = "問合せ"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from crm.models import Municipality
        from tickets import receivers

        post_save.connect(
            receivers.create_municipality_queue,
            sender=Municipality,
            dispatch_uid="tickets.municipality_queue",
        )
