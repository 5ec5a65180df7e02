from django.db import migrations


def forwards(apps, schema_editor):
    from knowledge.seed import seed_starter_content

    seed_starter_content(apps.get_model("knowledge", "Article"), apps.get_model("knowledge", "CannedReply"))


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
