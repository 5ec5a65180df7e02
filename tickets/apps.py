from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = "問合せ"

    def ready(self) -> None:
        # Connects the receiver that gives every new municipality its helpdesk queue.
        from tickets import signals  # noqa: F401
