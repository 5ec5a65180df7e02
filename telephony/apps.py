from django.apps import AppConfig


class TelephonyConfig(AppConfig):
    name = "telephony"
    verbose_name = "電話"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from crm.models import Municipality
        from telephony import signals, tasks
        from telephony.lines import rules_changed
        from telephony.models import CalendarException, PhoneSettings, WeeklyHours

        # Any change to what a line answers with (the municipality's answer name is in the
        # greeting) makes every process reload its cached copy; see telephony.lines.
        def changed(**kwargs) -> None:
            rules_changed()

        for model in (CalendarException, PhoneSettings, WeeklyHours, Municipality):
            post_save.connect(
                changed, sender=model, weak=False, dispatch_uid=f"line-rules-{model.__name__}"
            )
            post_delete.connect(
                changed, sender=model, weak=False, dispatch_uid=f"line-rules-del-{model.__name__}"
            )

        from django.contrib.auth.signals import user_logged_out

        from telephony import services

        # Logging out ends the agent's shift at the phone, whatever tabs are left open.
        def logged_out(user=None, **kwargs) -> None:
            if user is not None and user.is_operator_staff:
                services.agent_disconnected(user_id=user.pk)

        user_logged_out.connect(logged_out, weak=False, dispatch_uid="telephony-logged-out")
        # telephony's parts of tickets' pages: tickets' templates never name telephony's.
        from tickets.page_parts import page_part_add

        page_part_add("console_phone_bar", "telephony/_console_phone_bar.html")
        page_part_add("console_incoming", "telephony/_console_incoming.html")
        page_part_add("ticket_actions", "telephony/_call_back_button.html")
        page_part_add("ticket_calls", "telephony/_ticket_calls.html")

        # Due times of tickets' service levels follow the municipality's business calendar.
        from telephony import sla
        from tickets.signals import inquiry_opened, inquiry_reclassified

        inquiry_opened.connect(sla.on_inquiries_opened, dispatch_uid="telephony-sla-opened")
        inquiry_reclassified.connect(
            sla.on_inquiry_reclassified, dispatch_uid="telephony-sla-reclassified"
        )

        # The services announce slow work after commit; the tasks module queues it.
        signals.outbound_call_requested.connect(
            tasks.queue_outbound_call_place, dispatch_uid="telephony-queue-outbound-call"
        )
        from tickets.signals import inquiry_opened

        inquiry_opened.connect(
            tasks.link_opened_inquiry_to_call, dispatch_uid="telephony-link-opened-inquiry"
        )
