from django.db import migrations

# Frozen copies of crm.normalize's fold (hiragana → katakana) and of the fold it replaces
# (katakana → hiragana): a migration must not change when the code does.
HIRAGANA = "".join(chr(code) for code in (*range(0x3041, 0x3097), 0x309D, 0x309E))
KATAKANA = "".join(chr(ord(ch) + 0x60) for ch in HIRAGANA)
OLD_KATAKANA = "".join(chr(code) for code in range(0x30A1, 0x30F7))
OLD_HIRAGANA = "".join(chr(ord(ch) - 0x60) for ch in OLD_KATAKANA)


def _translate(apps, schema_editor, source: str, target: str) -> None:
    Inquiry = apps.get_model("tickets", "Inquiry")
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(Inquiry._meta.db_table)
        schema_editor.execute(
            f"UPDATE {table} SET search_text = translate(search_text, %s, %s), "
            "search_text_internal = translate(search_text_internal, %s, %s) "
            "WHERE search_text ~ %s OR search_text_internal ~ %s",
            [source, target, source, target, f"[{source}]", f"[{source}]"],
        )
        # Most rows were rewritten: fresh statistics, or the planner misjudges the search
        # indexes until autovacuum gets round to the table (measured: 2-character searches
        # at 1M tickets took seconds instead of ~60 ms).
        schema_editor.execute(f"ANALYZE {table}")
        return
    table = str.maketrans(source, target)
    rows = Inquiry.objects.values_list("pk", "search_text", "search_text_internal")
    for pk, public, internal in rows.iterator():
        Inquiry.objects.filter(pk=pk).update(
            search_text=public.translate(table), search_text_internal=internal.translate(table)
        )


def to_katakana(apps, schema_editor):
    """Stored search text folded the one way the project folds kana: to katakana."""
    _translate(apps, schema_editor, HIRAGANA, KATAKANA)


def to_hiragana(apps, schema_editor):
    _translate(apps, schema_editor, OLD_KATAKANA, OLD_HIRAGANA)


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0007_inquiry_requester_name"),
        ("ticketmail", "0003_requester_names_from_stored_mail"),
    ]

    operations = [migrations.RunPython(to_katakana, to_hiragana, elidable=True)]
