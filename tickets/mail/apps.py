from django.apps import AppConfig


class TicketMailConfig(AppConfig):
    name = "tickets.mail"
    label = "ticketmail"
    verbose_name = "メール受付"

    def ready(self) -> None:
        from tickets.mail import receivers, signals, tasks
        from tickets.signals import inquiry_replied

        inquiry_replied.connect(
            receivers.send_reply_by_mail, dispatch_uid="tickets.mail.send_reply_by_mail"
        )
        # Services announce a pending mail after commit; the tasks module queues its sending.
        signals.outbound_mail_pending.connect(
            tasks.queue_mail_send_outbound, dispatch_uid="tickets.mail.queue_send_outbound"
        )
