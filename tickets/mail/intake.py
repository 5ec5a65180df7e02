"""Fetching mail from IMAP / POP3 servers and maildirs.

Messages are fetched in chunks (``MAIL_INGEST_CHUNK`` messages, ``MAIL_INGEST_CHUNK_BYTES``
at most) and handed to ``inbound.inbound_receive_many``, which stores and processes a chunk in a
few statements. A message is deleted from its source only after that has returned, i.e. after
its raw bytes (and the processing result or quarantine) are committed.
"""

from __future__ import annotations

import imaplib
import logging
import mailbox as stdlib_mailbox
import poplib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings
from django.utils import timezone

from tickets.mail.models import InboundMessage, Mailbox
from tickets.mail.services import inbound

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class PollResult:
    fetched: int = 0
    stored: int = 0
    quarantined: int = 0


def _count(result: PollResult, per_raw: list[list[InboundMessage]]) -> None:
    for messages in per_raw:
        result.fetched += 1
        result.stored += len(messages)
        result.quarantined += sum(m.status == InboundMessage.Status.QUARANTINED for m in messages)


def _bounded(items: Iterable[T], size: Callable[[T], int]) -> Iterator[list[T]]:
    """Items in chunks of at most MAIL_INGEST_CHUNK, closed once MAIL_INGEST_CHUNK_BYTES is reached."""
    chunk, total = [], 0
    for item in items:
        chunk.append(item)
        total += size(item)
        if len(chunk) >= settings.MAIL_INGEST_CHUNK or total >= settings.MAIL_INGEST_CHUNK_BYTES:
            yield chunk
            chunk, total = [], 0
    if chunk:
        yield chunk


def _chunks(keys: list, read) -> Iterator[list[tuple[object, bytes]]]:
    """(key, raw) pairs in bounded chunks, read lazily; a key that reads as None is skipped."""
    pairs = ((key, raw) for key in keys if (raw := read(key)) is not None)
    return _bounded(pairs, lambda pair: len(pair[1]))


def _receive(result: PollResult, chunk: list[tuple[object, bytes]], **where) -> None:
    _count(result, inbound.inbound_receive_many(raws=[raw for _, raw in chunk], **where))


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
        # A chunk is fetched and flagged with one command each, not one per message.
        for group in _imap_groups(conn, uids):
            chunk = _imap_fetch(conn, group)
            _receive(result, chunk, source=InboundMessage.Source.IMAP, mailbox=box)
            if chunk:
                conn.uid("STORE", b",".join(uid for uid, _ in chunk), "+FLAGS", "(\\Deleted)")
        conn.expunge()
    finally:
        try:
            conn.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return result


_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


def _imap_groups(conn: imaplib.IMAP4, uids: list[bytes]) -> Iterator[list[bytes]]:
    """UIDs in chunks bounded by count and size (sizes asked for in one command)."""
    if not uids:
        return
    typ, data = conn.uid("FETCH", b",".join(uids), "(UID RFC822.SIZE)")
    sizes = {}
    for line in data if typ == "OK" else []:
        line = line[0] if isinstance(line, tuple) else line
        uid, size = _UID.search(line or b""), _SIZE.search(line or b"")
        if uid and size:
            sizes[uid.group(1)] = int(size.group(1))
    yield from _bounded(uids, lambda uid: sizes.get(uid, 0))


def _imap_fetch(conn: imaplib.IMAP4, uids: list[bytes]) -> list[tuple[bytes, bytes]]:
    """(uid, raw) for the UIDs, in their order; one that cannot be read is left on the server."""
    typ, parts = conn.uid("FETCH", b",".join(uids), "(UID BODY.PEEK[])")
    raws = {}
    for part in parts if typ == "OK" else []:
        if isinstance(part, tuple):
            uid = _UID.search(part[0])
            if uid:
                raws[uid.group(1)] = part[1]
    return [(uid, raws[uid]) for uid in uids if uid in raws]


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

        def retrieve(number: int) -> bytes:
            _, lines, _ = conn.retr(number)
            return b"\r\n".join(lines) + b"\r\n"

        numbers = list(range(1, min(count, settings.MAIL_FETCH_BATCH) + 1))
        for chunk in _chunks(numbers, retrieve):
            _receive(result, chunk, source=InboundMessage.Source.POP3, mailbox=box)
            for number, _ in chunk:
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


def _delivery_order(key: str) -> tuple[int, ...]:
    """Maildir names start with the delivery time and a unique part (e.g. ``1734312900.M5P12Q3.
    host``): seconds, then the numbers of the unique part, ignoring the host name."""
    return tuple(int(n) for n in re.findall(r"\d+", ".".join(key.split(".")[:2])))


def ingest_maildir(path: str, *, recipient: str | None = None) -> PollResult:
    """Every message in a maildir (new/ and cur/); each file is removed after its commit."""
    result = PollResult()
    md = stdlib_mailbox.Maildir(path, factory=None, create=False)
    # In delivery order (a maildir lists in no order), so that a reply follows its original.
    keys = sorted(md.iterkeys(), key=_delivery_order)
    for chunk in _chunks(keys, md.get_bytes):
        _receive(result, chunk, source=InboundMessage.Source.MAILDIR, recipient=recipient)
        for key, _ in chunk:
            md.remove(key)
    return result
