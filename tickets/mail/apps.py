from django.apps import AppConfig


class TicketMailConfig(AppConfig):
    name = "tickets.mail"
    label = "ticketmail"
    verbose_name = "メール受付"

    def ready(self) -> None:
        from tickets.mail import receivers
        from tickets.signals import inquiry_replied

        inquiry_replied.connect(
            receivers.send_reply_by_mail, dispatch_uid="tickets.mail.send_reply_by_mail"
        )
