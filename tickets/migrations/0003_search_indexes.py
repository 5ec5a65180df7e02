"""Indexes for Japanese substring search (PostgreSQL only; SQLite scans).

pg_trgm's GIN index serves LIKE '%term%' for terms of 3+ characters. Trigrams cannot serve a
2-character term, so an expression GIN index over the text's distinct character bigrams
(fz_bigrams) answers those with one array-containment probe.
"""

from django.db import migrations

from crm.migration_ops import postgres_only_sql

BIGRAMS_FUNCTION = """
CREATE OR REPLACE FUNCTION fz_bigrams(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT substr(t, i, 2)), '{}')
    FROM generate_series(1, char_length(t) - 1) AS i
$$;
"""

class Migration(migrations.Migration):
    dependencies = [("tickets", "0002_categories_and_queues")]

    operations = [
        postgres_only_sql(
            "CREATE EXTENSION IF NOT EXISTS pg_trgm;",
            "SELECT 1;",  # other apps may use the extension
        ),
        postgres_only_sql(BIGRAMS_FUNCTION, "DROP FUNCTION IF EXISTS fz_bigrams(text);"),
        postgres_only_sql(
            "CREATE INDEX inquiry_search_trgm ON tickets_inquiry "
            "USING gin (search_text gin_trgm_ops);"
            "CREATE INDEX inquiry_search_internal_trgm ON tickets_inquiry "
            "USING gin (search_text_internal gin_trgm_ops);"
            "CREATE INDEX inquiry_search_bigrams ON tickets_inquiry "
            "USING gin (fz_bigrams(search_text));"
            "CREATE INDEX inquiry_search_internal_bigrams ON tickets_inquiry "
            "USING gin (fz_bigrams(search_text_internal));",
            "DROP INDEX IF EXISTS inquiry_search_trgm; DROP INDEX IF EXISTS inquiry_search_internal_trgm;"
            "DROP INDEX IF EXISTS inquiry_search_bigrams; DROP INDEX IF EXISTS inquiry_search_internal_bigrams;",
        ),
    ]
