"""Configure how one registered inbound address is fetched and how mail is sent from it.

    manage.py mail_mailbox furusato@otaru.example.jp --protocol imap --host imap.example.jp \
        --user furusato --password-env OTARU_IMAP_PASSWORD --charset iso-2022-jp

The password is read from an environment variable so it stays out of shell history.
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from tickets.mail.services import configuration


class Command(BaseCommand):
    help = "Create or update the mailbox settings of an inbound address."

    def add_arguments(self, parser):
        parser.add_argument("address")
        parser.add_argument("--protocol", choices=["none", "imap", "pop3"])
        parser.add_argument("--host")
        parser.add_argument("--port", type=int)
        parser.add_argument("--ssl", dest="use_ssl", action="store_true", default=None)
        parser.add_argument("--no-ssl", dest="use_ssl", action="store_false")
        parser.add_argument("--user", dest="username")
        parser.add_argument("--password-env", help="name of the environment variable")
        parser.add_argument("--folder")
        parser.add_argument("--charset", dest="outbound_charset", choices=["utf-8", "iso-2022-jp"])
        parser.add_argument("--display-name")
        parser.add_argument("--active", dest="active", action="store_true", default=None)
        parser.add_argument("--inactive", dest="active", action="store_false")

    def handle(self, *args, address, password_env=None, **options):
        fields = {
            key: options.get(key)
            for key in (
                "protocol",
                "host",
                "port",
                "use_ssl",
                "username",
                "folder",
                "outbound_charset",
                "display_name",
                "active",
            )
        }
        if password_env:
            if password_env not in os.environ:
                raise CommandError(f"environment variable {password_env} is not set")
            fields["password"] = os.environ[password_env]
        try:
            box = configuration.mailbox_configure(address=address, **fields)
        except Exception as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{box.address} {box.protocol} {box.host}:{box.port or ''}")
