from django.db import migrations

DISPOSITIONS = [
    ("resolved", "回答済み（解決）", 10),
    ("ticket", "問合せとして記録", 20),
    ("call_back", "折り返し予定", 30),
    ("escalate_city", "市へ取次", 40),
    ("provider", "事業者へ連絡", 50),
    ("wrong_number", "間違い電話", 60),
    ("silent", "無言・途中切断", 70),
    ("other", "その他", 90),
]


def add(apps, schema_editor):
    Disposition = apps.get_model("telephony", "Disposition")
    for code, name, order in DISPOSITIONS:
        Disposition.objects.update_or_create(code=code, defaults={"name": name, "sort_order": order})


def remove(apps, schema_editor):
    apps.get_model("telephony", "Disposition").objects.filter(
        code__in=[c for c, _, _ in DISPOSITIONS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("telephony", "0001_initial")]
    operations = [migrations.RunPython(add, remove)]
