from django.apps import AppConfig


class DonationsSyncConfig(AppConfig):
    name = "donations_sync"
    verbose_name = "寄附・配送データ"

    def ready(self) -> None:
        # Registers the beat task (autodiscovery only finds modules named tasks.py).
        from donations_sync import feed_tasks  # noqa: F401
