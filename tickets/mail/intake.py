"""Fetching mail from IMAP / POP3 servers and maildirs.

A message is deleted from its source only after ``services.inbound_receive`` has returned,
i.e. after the raw bytes (and the processing result or quarantine) are committed.
"""

from __future__ import annotations

import imaplib
import logging
import mailbox as stdlib_mailbox
import poplib
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from tickets.mail import services
from tickets.mail.models import InboundMessage, Mailbox

logger = logging.getLogger(__name__)


@dataclass
class PollResult:
    fetched: int = 0
    stored: int = 0
    quarantined: int = 0


def _count(result: PollResult, messages: list[InboundMessage]) -> None:
    result.fetched += 1
    result.stored += len(messages)
    result.quarantined += sum(m.status == InboundMessage.Status.QUARANTINED for m in messages)


def poll_imap(box: Mailbox) -> PollResult:
    result = PollResult()
    port = box.port or (993 if box.use_ssl else 143)
    timeout = settings.MAIL_FETCH_TIMEOUT
    if box.use_ssl:
        conn = imaplib.IMAP4_SSL(box.host, port, timeout=timeout)
    else:
        conn = imaplib.IMAP4(box.host, port, timeout=timeout)
    try:
        conn.login(box.username, box.password)
        typ, _ = conn.select(_imap_quote(box.folder))
        if typ != "OK":
            raise imaplib.IMAP4.error(f"folder {box.folder!r} cannot be selected")
        typ, data = conn.uid("SEARCH", None, "UNDELETED")
        uids = (data[0] or b"").split()[: settings.MAIL_FETCH_BATCH]
        for uid in uids:
            typ, parts = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
            if typ != "OK" or raw is None:
                continue
            messages = services.inbound_receive(
                raw=raw, source=InboundMessage.Source.IMAP, mailbox=box
            )
            _count(result, messages)
            conn.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
        conn.expunge()
    finally:
        try:
            conn.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return result


def _imap_quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def poll_pop3(box: Mailbox) -> PollResult:
    result = PollResult()
    port = box.port or (995 if box.use_ssl else 110)
    timeout = settings.MAIL_FETCH_TIMEOUT
    conn = (
        poplib.POP3_SSL(box.host, port, timeout=timeout)
        if box.use_ssl
        else poplib.POP3(box.host, port, timeout=timeout)
    )
    try:
        conn.user(box.username)
        conn.pass_(box.password)
        count, _ = conn.stat()
        for number in range(1, min(count, settings.MAIL_FETCH_BATCH) + 1):
            _, lines, _ = conn.retr(number)
            raw = b"\r\n".join(lines) + b"\r\n"
            messages = services.inbound_receive(
                raw=raw, source=InboundMessage.Source.POP3, mailbox=box
            )
            _count(result, messages)
            conn.dele(number)
    finally:
        # POP3 deletes marked messages only on a clean QUIT; a crash above leaves them all.
        conn.quit()
    return result


def poll(box: Mailbox) -> PollResult:
    try:
        if box.protocol == Mailbox.Protocol.IMAP:
            result = poll_imap(box)
        elif box.protocol == Mailbox.Protocol.POP3:
            result = poll_pop3(box)
        else:
            return PollResult()
    except Exception as exc:
        Mailbox.objects.filter(pk=box.pk).update(last_error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    Mailbox.objects.filter(pk=box.pk).update(last_polled_at=timezone.now(), last_error="")
    return result


def ingest_maildir(path: str, *, recipient: str | None = None) -> PollResult:
    """Every message in a maildir (new/ and cur/); each file is removed after its commit."""
    result = PollResult()
    md = stdlib_mailbox.Maildir(path, factory=None, create=False)
    for key in list(md.iterkeys()):
        raw = md.get_bytes(key)
        messages = services.inbound_receive(
            raw=raw, source=InboundMessage.Source.MAILDIR, recipient=recipient
        )
        _count(result, messages)
        md.remove(key)
    return result
