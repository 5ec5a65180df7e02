"""Migration operations that only apply on PostgreSQL.

The embedded demo runs on SQLite, which has no operator classes or pg_trgm; the indexes that
make lookups fast at operator scale are created only where they can exist.
"""

from django.db import migrations


def postgres_only_sql(sql: str, reverse_sql: str) -> migrations.RunPython:
    def forward(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    def backward(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(reverse_sql)

    return migrations.RunPython(forward, backward, elidable=False)
