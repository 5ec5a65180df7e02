from django.apps import AppConfig


class EscalationConfig(AppConfig):
    name = "escalation"
    verbose_name = "市への報告"

    def ready(self) -> None:
        from escalation import signals, tasks
        from telephony.signals import call_wrapped_up
        from tickets import signals as ticket_signals
        from tickets.page_parts import page_part_add

        # Tickets and telephony announce what happened; escalation decides what it means.
        ticket_signals.inquiry_opened.connect(
            tasks.on_inquiry_opened, dispatch_uid="escalation-inquiry-opened"
        )
        ticket_signals.inquiry_reclassified.connect(
            tasks.on_inquiry_reclassified, dispatch_uid="escalation-inquiry-reclassified"
        )
        ticket_signals.inquiry_message_added.connect(
            tasks.on_inquiry_message_added, dispatch_uid="escalation-inquiry-message"
        )
        call_wrapped_up.connect(tasks.on_call_wrapped_up, dispatch_uid="escalation-call-wrap-up")
        signals.notifications_queued.connect(
            tasks.queue_notifications, dispatch_uid="escalation-queue-notifications"
        )
        page_part_add("ticket_summary", "escalation/_ticket_panel.html")
        page_part_add("console_incoming", "escalation/_console_part.html")
