from django.db import migrations

from crm.migration_ops import postgres_only_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0001_initial")]

    operations = [
        # LIKE 'ヤマダ%' on the normalized reading uses this index under any collation.
        postgres_only_sql(
            "CREATE INDEX IF NOT EXISTS donor_muni_kana_pattern "
            "ON crm_donor (municipality_id, name_kana varchar_pattern_ops)",
            "DROP INDEX IF EXISTS donor_muni_kana_pattern",
        ),
    ]
