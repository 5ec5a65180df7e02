"""Raw RFC 5322 bytes → a ``ParsedMail`` with exact Japanese text.

The stdlib parser (compat32 policy) splits the MIME tree and undoes quoted-printable and base64;
everything that turns bytes into text is ours (see ``charsets``), because the stdlib codecs lose
Windows characters in ISO-2022-JP and mis-join encoded words that split a multibyte character.
"""

from __future__ import annotations

import binascii
import email
import email.utils
import re
from dataclasses import dataclass, field
from email.message import Message
from email.policy import compat32
from html.parser import HTMLParser

from tickets.mail.charsets import detect_and_decode

# --- Headers --------------------------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+?)\?([BbQq])\?([^?\s]*?)\?=")


def _b64(data: str) -> bytes:
    data = re.sub(r"[^A-Za-z0-9+/]", "", data)
    data += "=" * (-len(data) % 4)
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        return b""


def _q(data: str) -> bytes:
    data = data.replace("_", " ")
    return re.sub(r"=([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), data).encode(
        "latin-1", errors="replace"
    )


def _raw_bytes(value: str) -> bytes:
    """A header string from the compat32 parser back to its bytes (8-bit arrives surrogate-escaped)."""
    return value.encode("utf-8", errors="surrogateescape")


_UNSTORABLE_NUL = re.compile("\x00")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """Text as the database can hold it: NUL removed (PostgreSQL text cannot contain it) and
    leftover surrogate escapes of undecodable bytes shown as U+FFFD (not encodable as UTF-8).
    A hostile or broken mail must not keep its raw bytes from being stored."""
    return _LONE_SURROGATE.sub("\ufffd", _UNSTORABLE_NUL.sub("", text))


def decode_header_value(value: str | None) -> str:
    """RFC 2047 decoding that joins adjacent words of one charset *before* decoding.

    Japanese mailers split a subject into encoded words at byte boundaries, so one word may end
    in the middle of a Shift_JIS or UTF-8 character, or inside an ISO-2022-JP escape run.
    Raw 8-bit headers (non-conforming but common) are charset-detected.
    """
    if not value:
        return ""
    value = str(value)
    pieces: list[tuple[str | None, bytes | str]] = []  # (charset or None for plain text, data)
    pos = 0
    for m in _ENCODED_WORD.finditer(value):
        between = value[pos : m.start()]
        # Whitespace between two encoded words is folding, not content (RFC 2047 §6.2).
        if between and not (between.strip() == "" and pieces and pieces[-1][0] is not None):
            pieces.append((None, between))
        charset = m.group(1).split("*", 1)[0]
        data = _b64(m.group(3)) if m.group(2) in "Bb" else _q(m.group(3))
        if pieces and pieces[-1][0] is not None and pieces[-1][0].lower() == charset.lower():
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + data)  # type: ignore[operator]
        else:
            pieces.append((charset, data))
        pos = m.end()
    if pos < len(value):
        pieces.append((None, value[pos:]))
    out = []
    for charset, data in pieces:
        if charset is None:
            has_8bit = any("\udc80" <= ch <= "\udcff" for ch in data)  # type: ignore[union-attr]
            # Raw 8-bit bytes, or raw ISO-2022-JP escape sequences (old mailers), are detected.
            if has_8bit or "\x1b" in data:  # type: ignore[operator]
                out.append(detect_and_decode(_raw_bytes(data))[0])  # type: ignore[arg-type]
            else:
                out.append(data)  # type: ignore[arg-type]
        else:
            out.append(detect_and_decode(data, charset)[0])  # type: ignore[arg-type]
    text = storable("".join(out))
    # Unfold; a header never carries line breaks into our data.
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


def parse_addresses(value: str | None) -> list[tuple[str, str]]:
    """[(display name, lower-cased address)], names decoded."""
    if not value:
        return []
    value = str(value)
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        value = detect_and_decode(_raw_bytes(value))[0]
    result = []
    for name, addr in email.utils.getaddresses([value]):
        addr = storable(addr.strip().lower())
        if "@" not in addr:
            continue
        result.append((decode_header_value(name), addr))
    return result


_MSGID = re.compile(r"<([^<>\s]+)>")


def parse_message_ids(value: str | None) -> list[str]:
    if not value:
        return []
    return [storable(found) for found in _MSGID.findall(str(value))]


# --- HTML → text ----------------------------------------------------------------------------

_BLOCK = {
    "p",
    "div",
    "tr",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "blockquote",
    "pre",
    "section",
    "article",
    "header",
    "footer",
    "hr",
}
_SKIP = {"script", "style", "head", "title", "noscript", "template"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n・")
        elif tag in ("td", "th"):
            self.out.append("\t")
        elif tag in _BLOCK:
            self.out.append("\n")
            if tag == "pre":
                self.pre += 1

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.out.append("\n")
            if tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data):
        if self.skip:
            return
        if not self.pre:
            data = re.sub(r"[ \t\r\n]+", " ", data)
        self.out.append(data)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.out).replace("\xa0", " ")
    lines = [line.strip(" \t") for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- The parsed message ---------------------------------------------------------------------


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str = ""
    inline: bool = False

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class DeliveryReport:
    """What a DSN (multipart/report; report-type=delivery-status) says failed."""

    failed_recipients: list[str] = field(default_factory=list)
    original_message_id: str = ""
    status: str = ""
    diagnostic: str = ""


@dataclass
class ParsedMail:
    message_id: str
    subject: str
    from_name: str
    from_address: str
    to: list[str]
    cc: list[str]
    reply_to: list[str]
    in_reply_to: list[str]
    references: list[str]
    date: object  # aware datetime or None
    body: str
    body_charset: str
    body_from_html: bool
    attachments: list[ParsedAttachment]
    headers: dict[str, str]
    delivery_report: DeliveryReport | None = None

    @property
    def recipients(self) -> list[str]:
        """Every address the mail was delivered to, as the MTA saw it (for inbox routing)."""
        seen = []
        for key in ("delivered-to", "x-original-to", "envelope-to"):
            for _, addr in parse_addresses(self.headers.get(key)):
                seen.append(addr)
        return list(dict.fromkeys(seen + self.to + self.cc))


def _part_text(part: Message) -> tuple[str, str]:
    payload = part.get_payload(decode=True) or b""
    text, charset = detect_and_decode(payload, part.get_content_charset())
    return storable(text), charset


_RAW_FILENAME = re.compile(r'(?:file)?name\s*=\s*"([^"]*)"|(?:file)?name\s*=\s*([^;\s]+)', re.I)


def _filename(part: Message) -> str:
    """RFC 2231 (with continuations and a charset), RFC 2047 inside quotes, or raw 8-bit."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw_header = next((v for k, v in part.raw_items() if k.lower() == header), "")
        if re.search(r"[\udc80-\udcff]", raw_header):
            m = _RAW_FILENAME.search(raw_header)
            if m:
                return detect_and_decode(_raw_bytes(m.group(1) or m.group(2)))[0]
        value = part.get_param(param, header=header)
        if not value:
            continue
        if isinstance(value, tuple):
            charset, _lang, text = value
            raw = email.utils.unquote(text).encode("latin-1", errors="surrogateescape")
            return detect_and_decode(raw, charset or None)[0]
        return decode_header_value(email.utils.unquote(value))
    return ""


def _is_attachment(part: Message) -> bool:
    disposition = (part.get("content-disposition") or "").split(";")[0].strip().lower()
    if disposition == "attachment":
        return True
    if part.get_content_maintype() == "text" and not _filename(part):
        return False
    return part.get_content_maintype() not in ("text", "multipart") or bool(_filename(part))


def _parse_dsn(msg: Message) -> DeliveryReport:
    report = DeliveryReport()
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            # Each per-recipient block is a header block; compat32 gives them as sub-messages.
            blocks = part.get_payload()
            if isinstance(blocks, str):
                blocks = [email.message_from_string(b) for b in blocks.split("\n\n")]
            for block in blocks or []:
                action = (block.get("action") or "").strip().lower()
                recipient = block.get("final-recipient") or block.get("original-recipient")
                if recipient and action in ("failed", ""):
                    addr = storable(recipient.split(";", 1)[-1].strip().strip("<>").lower())
                    if "@" in addr and addr not in report.failed_recipients:
                        report.failed_recipients.append(addr)
                if block.get("status"):
                    report.status = storable(block.get("status").strip())
                if block.get("diagnostic-code"):
                    report.diagnostic = decode_header_value(block.get("diagnostic-code"))
        elif ctype in ("message/rfc822", "text/rfc822-headers") and not report.original_message_id:
            if ctype == "message/rfc822":
                inner = part.get_payload()
                inner = inner[0] if isinstance(inner, list) and inner else None
                ids = parse_message_ids(inner.get("message-id")) if inner is not None else []
            else:
                text = part.get_payload(decode=True) or b""
                headers = email.message_from_bytes(text, policy=compat32)
                ids = parse_message_ids(headers.get("message-id"))
            if ids:
                report.original_message_id = ids[0]
    return report


def parse(raw: bytes) -> ParsedMail:
    msg = email.message_from_bytes(raw, policy=compat32)
    # raw_items: compat32's get() turns 8-bit headers into lossy Header objects.
    headers = {k.lower(): v for k, v in msg.raw_items()}

    plain: tuple[str, str] | None = None
    html: tuple[str, str] | None = None
    attachments: list[ParsedAttachment] = []
    report = None
    if msg.get_content_type() == "multipart/report":
        report = _parse_dsn(msg)

    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if report is not None and ctype in (
            "message/delivery-status",
            "text/rfc822-headers",
        ):
            continue
        if _is_attachment(part):
            data = part.get_payload(decode=True)
            if data is None:  # message/rfc822 and other containers
                data = part.as_bytes() if hasattr(part, "as_bytes") else b""
            cid = (part.get("content-id") or "").strip().strip("<>")
            attachments.append(
                ParsedAttachment(
                    filename=storable(_filename(part)) or "attachment",
                    content_type=ctype,
                    data=data,
                    content_id=cid,
                    inline=(part.get("content-disposition") or "").lower().startswith("inline"),
                )
            )
        elif ctype == "text/plain" and plain is None:
            plain = _part_text(part)
        elif ctype == "text/html" and html is None:
            html = _part_text(part)

    if plain is not None:
        body, charset, from_html = plain[0], plain[1], False
    elif html is not None:
        body, charset, from_html = html_to_text(html[0]), html[1], True
    else:
        body, charset, from_html = "", "", False
    body = body.replace("\r\n", "\n").replace("\r", "\n")

    sender = parse_addresses(headers.get("from"))
    from_name, from_address = sender[0] if sender else ("", "")
    date = None
    if headers.get("date"):
        try:
            date = email.utils.parsedate_to_datetime(str(headers.get("date")))
            if date.tzinfo is None:
                date = None
        except (TypeError, ValueError, IndexError):
            date = None
    return ParsedMail(
        message_id=(parse_message_ids(headers.get("message-id")) or [""])[0],
        subject=decode_header_value(headers.get("subject")),
        from_name=from_name,
        from_address=from_address,
        to=[a for _, a in parse_addresses(headers.get("to"))],
        cc=[a for _, a in parse_addresses(headers.get("cc"))],
        reply_to=[a for _, a in parse_addresses(headers.get("reply-to"))],
        in_reply_to=parse_message_ids(headers.get("in-reply-to")),
        references=parse_message_ids(headers.get("references")),
        date=date,
        body=body,
        body_charset=charset,
        body_from_html=from_html,
        attachments=attachments,
        headers=headers,
        delivery_report=report,
    )
