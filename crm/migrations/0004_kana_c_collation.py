from django.db import migrations

from crm.migration_ops import postgres_only_sql


class Migration(migrations.Migration):
    """Readings are full-width katakana, whose code-point order is gojūon order: a "C" collation
    loses nothing and lets the plain (municipality, name_kana) btree answer LIKE 'ヤマ%' with an
    ordered range scan. Databases created with C.UTF-8 do not count as "C" on PostgreSQL 15, and
    there the varchar_pattern_ops index could not serve ORDER BY name_kana."""

    dependencies = [("crm", "0003_personal_data_access")]

    operations = [
        postgres_only_sql(
            'ALTER TABLE crm_donor ALTER COLUMN name_kana TYPE varchar(160) COLLATE "C"; '
            "DROP INDEX IF EXISTS donor_muni_kana_pattern",
            'ALTER TABLE crm_donor ALTER COLUMN name_kana TYPE varchar(160) COLLATE "default"; '
            "CREATE INDEX IF NOT EXISTS donor_muni_kana_pattern "
            "ON crm_donor (municipality_id, name_kana varchar_pattern_ops)",
        ),
    ]
