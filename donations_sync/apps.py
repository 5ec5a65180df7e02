from django.apps import AppConfig


class DonationsSyncConfig(AppConfig):
    name = "donations_sync"
    verbose_name = "寄附・配送データ"
