"""Building outbound mail bytes: UTF-8 by default, CP50220 ISO-2022-JP where a city asks for it.

Header injection is impossible by construction: every header value we write is first cleaned of
CR, LF and NUL (names and subjects are folded to one line), addresses must match a strict
pattern, and encoded words are produced by us, never concatenated from user text.
"""

from __future__ import annotations

import base64
import re
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.policy import compat32
from email.utils import format_datetime
from io import BytesIO

from django.core.mail import EmailMessage
from django.utils import timezone

from tickets.mail.charsets import encode_iso2022jp

_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251})$")


class UnsafeHeader(ValueError):
    pass


def one_line(value: str) -> str:
    """Fold anything that could end a header line into a single space."""
    return re.sub(r"[\r\n\x00\x0b\x0c\u2028\u2029\x85]+", " ", value or "").strip()


def check_address(address: str) -> str:
    if not _ADDRESS.match(address or "") or ".." in address:
        raise UnsafeHeader(f"メールアドレスが正しくありません: {address!r}")
    return address


def _jis_words(text: str) -> str:
    """RFC 2047 encoded words in ISO-2022-JP; each word starts and ends in ASCII mode."""
    words, chunk = [], ""
    for ch in text:
        candidate = chunk + ch
        if len(base64.b64encode(encode_iso2022jp(candidate))) > 45 and chunk:
            words.append(chunk)
            chunk = ch
        else:
            chunk = candidate
    if chunk:
        words.append(chunk)
    return " ".join(
        "=?ISO-2022-JP?B?" + base64.b64encode(encode_iso2022jp(w)).decode() + "?=" for w in words
    )


def _encode_header(text: str, charset: str) -> str:
    text = one_line(text)
    if text.isascii():
        return text
    if charset == "iso-2022-jp":
        return _jis_words(text)
    return Header(text, "utf-8").encode()


def _format_address(name: str, address: str, charset: str) -> str:
    check_address(address)
    name = one_line(name)
    if not name:
        return address
    if name.isascii():
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    return f"{_encode_header(name, charset)} <{address}>"


def build(
    *,
    from_name: str,
    from_address: str,
    to_address: str,
    subject: str,
    body: str,
    message_id: str,
    charset: str = "utf-8",
    in_reply_to: str = "",
    references: list[str] | None = None,
    reply_to: str = "",
    auto_submitted: bool = False,
) -> tuple[Message, str]:
    """(message, charset actually used). Text outside CP932 falls back to UTF-8."""
    if charset == "iso-2022-jp":
        try:
            body_bytes = encode_iso2022jp(body.replace("\r\n", "\n"))
            encode_iso2022jp(one_line(subject) + one_line(from_name))
        except UnicodeEncodeError:
            charset = "utf-8"
    msg = _Message()
    msg["From"] = _format_address(from_name, from_address, charset)
    msg["To"] = check_address(to_address)
    msg["Subject"] = _encode_header(subject, charset)
    msg["Date"] = format_datetime(timezone.localtime())
    msg["Message-ID"] = f"<{check_address(message_id)}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{check_address(in_reply_to)}>"
    refs = [f"<{check_address(r)}>" for r in (references or []) if _ADDRESS.match(r)]
    if refs:
        msg["References"] = " ".join(refs)
    if reply_to:
        msg["Reply-To"] = check_address(reply_to)
    if auto_submitted:
        msg["Auto-Submitted"] = "auto-replied"
    msg["MIME-Version"] = "1.0"
    if charset == "iso-2022-jp":
        msg["Content-Type"] = "text/plain; charset=ISO-2022-JP"
        msg["Content-Transfer-Encoding"] = "7bit"
        msg.set_payload(body_bytes.decode("ascii"))
    else:
        utf8 = Charset("utf-8")
        utf8.body_encoding = QP
        msg.set_payload(body, charset=utf8)
    return msg, charset


class _Message(Message):
    """compat32 Message whose as_bytes takes Django's ``linesep`` argument."""

    def as_bytes(self, unixfrom: bool = False, policy=None, linesep: str = "\n") -> bytes:
        out = BytesIO()
        BytesGenerator(out, mangle_from_=False, policy=compat32.clone(linesep=linesep)).flatten(
            self, unixfrom=unixfrom
        )
        return out.getvalue()


class PrebuiltEmail(EmailMessage):
    """Hands our own MIME message to Django's mail backends (SMTP, or locmem in tests)."""

    def __init__(self, mime: Message, from_email: str, to: list[str]):
        super().__init__(from_email=from_email, to=to)
        self._mime = mime

    def message(self, *args, **kwargs):  # noqa: D102
        return self._mime
