from email.parser import BytesHeaderParser
from email.policy import compat32

from django.db import migrations


def requester_names_from_stored_mail(apps, schema_editor):
    """Inquiries opened by mail before the requester's name was kept: read it again from the
    stored raw mail's From header, and make it searchable."""
    from tickets.mail.decoding import parse_addresses
    from tickets.search import normalize_for_search

    InboundMessage = apps.get_model("ticketmail", "InboundMessage")
    Inquiry = apps.get_model("tickets", "Inquiry")
    opened = (
        InboundMessage.objects.filter(created_inquiry=True, inquiry__requester_name="")
        .values_list("inquiry_id", "raw")
        .order_by("pk")
    )
    for inquiry_id, raw in opened.iterator(chunk_size=200):
        try:
            headers = BytesHeaderParser(policy=compat32).parsebytes(bytes(raw))
            sender = parse_addresses(headers.get("from"))
        except Exception:  # headers too broken to read: the address alone stays shown
            continue
        name = sender[0][0].strip()[:200] if sender else ""
        if not name:
            continue
        inquiry = Inquiry.objects.only("search_text").get(pk=inquiry_id)
        search_text = f"{inquiry.search_text}\n{normalize_for_search(name)}".strip()
        Inquiry.objects.filter(pk=inquiry_id).update(requester_name=name, search_text=search_text)


class Migration(migrations.Migration):
    dependencies = [
        ("ticketmail", "0002_mailbox_password_encrypted"),
        ("tickets", "0007_inquiry_requester_name"),
    ]

    operations = [
        migrations.RunPython(requester_names_from_stored_mail, migrations.RunPython.noop),
    ]
