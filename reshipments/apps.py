from django.apps import AppConfig


class ReshipmentsConfig(AppConfig):
    name = "reshipments"
    verbose_name = "再送・住所不明返送"

    def ready(self) -> None:
        from donations_sync import signals as core_signals
        from reshipments import receivers
        from tickets.page_parts import page_part_add

        # tickets' pages name no re-shipment template: the parts are added here.
        page_part_add("ticket_summary", "reshipments/_ticket_part.html")
        page_part_add("donor_shipment", "reshipments/_donor_shipment.html")
        # The outbox tells what the core answered; re-shipments decide what it means for the
        # re-shipment, its ticket and the donor.
        core_signals.core_decision_answered.connect(
            receivers.on_core_decision_answered, dispatch_uid="reshipments-core-answer"
        )
