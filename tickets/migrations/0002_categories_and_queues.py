"""Seed the inquiry taxonomy (MISSION.md) and give every existing municipality its queue."""

from django.db import migrations

CATEGORIES = [
    ("how_to_donate", "寄附の方法"),
    ("gift_contents", "返礼品の内容"),
    ("shipping_status", "配送状況・遅延"),
    ("delivery_change", "配達日時の変更"),
    ("damaged", "破損・傷み"),
    ("wrong_missing", "誤配・欠品"),
    ("receipt", "受領証明書（未着・再発行）"),
    ("one_stop", "ワンストップ特例"),
    ("address_change", "住所・氏名変更"),
    ("cancellation", "キャンセル"),
    ("payment", "支払い"),
    ("tax_return", "確定申告"),
    ("catalogue", "カタログ請求"),
    ("provider_shipping", "事業者: 出荷依頼"),
    ("provider_settlement", "事業者: 精算"),
    ("portal_review", "ポータルの口コミ対応"),
    ("other", "その他"),
]


def seed(apps, schema_editor):
    Category = apps.get_model("tickets", "Category")
    for order, (code, name) in enumerate(CATEGORIES, start=1):
        Category.objects.update_or_create(code=code, defaults={"name": name, "sort_order": order * 10})

    Municipality = apps.get_model("crm", "Municipality")
    Queue = apps.get_model("helpdesk", "Queue")
    MunicipalityQueue = apps.get_model("tickets", "MunicipalityQueue")
    for municipality in Municipality.objects.filter(ticket_queue__isnull=True):
        queue = Queue.objects.create(
            title=municipality.name,
            slug=f"m{municipality.code}",
            allow_email_submission=False,
            allow_public_submission=False,
            enable_notifications_on_email_events=False,
        )
        MunicipalityQueue.objects.create(municipality=municipality, queue=queue)


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
