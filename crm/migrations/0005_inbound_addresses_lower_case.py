from django.db import migrations


def lower_case_inbound_addresses(apps, schema_editor):
    """Addresses registered with capitals never matched mail routing, which compares the
    normalised form; store every one as crm.normalize.normalize_email gives it."""
    from crm.normalize import normalize_email

    Address = apps.get_model("crm", "MunicipalityEmailAddress")
    taken = set(Address.objects.values_list("address", flat=True))
    for row in Address.objects.order_by("id"):
        normalized = normalize_email(row.address)
        if normalized == row.address:
            continue
        if normalized in taken:
            # Registered twice in different case: the lower-case row already routes the mail;
            # this one is left for an administrator to remove (with its mailbox settings).
            continue
        taken.discard(row.address)
        taken.add(normalized)
        row.address = normalized
        row.save(update_fields=["address"])


class Migration(migrations.Migration):
    dependencies = [("crm", "0004_kana_c_collation")]

    operations = [
        migrations.RunPython(lower_case_inbound_addresses, migrations.RunPython.noop),
    ]
