from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"

    def ready(self) -> None:
        from crm import audit  # noqa: F401  (connects the log-in signal receivers)
        from crm.sessions import connect_receivers

        connect_receivers()
