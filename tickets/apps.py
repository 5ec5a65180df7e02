from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = "問合せ"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from crm.models import Municipality
        from knowledge import macros
        from tickets import receivers
        from tickets.models import Severity, Status

        # What a 定型文 may set (knowledge stores the codes, tickets applies them).
        macros.register_choices(
            statuses=[(s.value, s.label) for s in Status if s != Status.DUPLICATE],
            severities=list(Severity.choices),
        )

        post_save.connect(
            receivers.create_municipality_queue,
            sender=Municipality,
            dispatch_uid="tickets.municipality_queue",
        )
        from tickets.signals import inquiry_message_added, inquiry_replied

        inquiry_replied.connect(
            receivers.reply_awaits_requester, dispatch_uid="tickets.awaiting_requester"
        )
        inquiry_message_added.connect(
            receivers.requester_wrote, dispatch_uid="tickets.requester_wrote"
        )
