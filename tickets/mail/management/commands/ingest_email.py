"""Receive mail from an MTA pipe (one raw message on stdin) or from a maildir.

Postfix example (master.cf / aliases): ``| /srv/app/.venv/bin/python manage.py ingest_email
--recipient ${original_recipient}``. Exit status 75 (EX_TEMPFAIL) tells the MTA to keep the
message and retry when it could not be stored; once stored, the exit status is 0 even if the
message was quarantined (it is kept and shown to supervisors).
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from tickets.mail import intake
from tickets.mail.models import InboundMessage
from tickets.mail.services import inbound

EX_TEMPFAIL = 75


class Command(BaseCommand):
    help = "Ingest one raw message from stdin, or every message of a maildir."

    def add_arguments(self, parser):
        parser.add_argument("--recipient", help="envelope recipient (one of our inbound addresses)")
        parser.add_argument("--maildir", help="read every message of this maildir instead of stdin")

    def handle(self, *args, recipient=None, maildir=None, **options):
        if maildir:
            result = intake.ingest_maildir(maildir, recipient=recipient)
            self.stdout.write(
                f"fetched={result.fetched} stored={result.stored} quarantined={result.quarantined}"
            )
            return
        raw = sys.stdin.buffer.read()
        if not raw.strip():
            raise CommandError("no message on stdin")
        try:
            messages = inbound.inbound_receive(
                raw=raw, source=InboundMessage.Source.PIPE, recipient=recipient
            )
        except Exception as exc:
            self.stderr.write(f"message not stored, retry later: {exc}")
            sys.exit(EX_TEMPFAIL)
        for m in messages:
            self.stdout.write(f"{m.pk} {m.status} {m.reason}")
