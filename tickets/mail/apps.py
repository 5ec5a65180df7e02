from django.apps import AppConfig


class TicketMailConfig(AppConfig):
    name = "tickets.mail"
    label = "ticketmail"
    verbose_name = "メール受付"
