from django.apps import AppConfig


class TelephonyConfig(AppConfig):
    name = "telephony"
    verbose_name = "電話"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from telephony.calendar import clear_calendar_cache
        from telephony.models import CalendarException, PhoneSettings, WeeklyHours

        # Any change to a calendar rule drops this process's cached calendars at once.
        def clear(**kwargs) -> None:
            clear_calendar_cache()

        for model in (CalendarException, PhoneSettings, WeeklyHours):
            post_save.connect(
                clear, sender=model, weak=False, dispatch_uid=f"calendar-{model.__name__}"
            )
            post_delete.connect(
                clear, sender=model, weak=False, dispatch_uid=f"calendar-del-{model.__name__}"
            )
