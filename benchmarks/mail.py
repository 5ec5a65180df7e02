"""Mail intake throughput and decoding accuracy on a generated 10,000-message maildir.

    DATABASE_URL=postgres://…/scratch .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://…/scratch .venv/bin/python benchmarks/mail.py [--messages 10000]

Writes a maildir of mixed encodings (ISO-2022-JP as Outlook writes it, Shift_JIS 8-bit,
windows-31j quoted-printable, EUC-JP base64, UTF-8 8-bit with backslashes, UTF-8 base64,
HTML-only, subjects split mid-character across encoded words, unlabelled Shift_JIS), then:

1. ingests it with ``tickets.mail`` end to end in one process (store raw, parse, thread, link
   records, rules, open the ticket — every message committed), reporting messages/s;
2. parses the same messages with our decoder alone, and with vanilla django-helpdesk's parsing
   path (``helpdesk.email.extract_email_subject`` + ``extract_email_message_content``, fed the
   way its IMAP path feeds it: ``force_str(raw, errors="replace")``), reporting messages/s and
   how many of each came out with exactly the expected subject and body text.

Use a scratch database: the run leaves a benchmark municipality and its tickets behind.
"""

from __future__ import annotations

import argparse
import base64
import os
import quopri
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from crm import normalize  # noqa: E402
from crm.models import Municipality, MunicipalityEmailAddress, User  # noqa: E402
from tickets.mail import charsets, decoding, intake, services  # noqa: E402
from tickets.mail.models import InboundMessage, Mailbox  # noqa: E402

ADDRESS = "bench@furusato-bench.example.jp"
# Fresh Message-IDs (and bytes) per run, so a rerun on the same database ingests anew.
RUN = int(time.time())

SENTENCES = [
    "いつもお世話になっております。",
    "先日申し込んだ返礼品のいくら醤油漬けがまだ届いていません。",
    "受付番号は123456-20241201-00001234です。",
    "寄附金受領証明書の再発行をお願いできますでしょうか。",
    "ワンストップ特例申請書を郵送しましたが、届いているか確認したいです。",
    "届いたメロンにカビが生えていました。写真を添付します。",
    "引っ越しのため住所変更をお願いします。新住所は北海道小樽市稲穂一丁目です。",
    "配達日時を12月28日の午前中に変更できますか。",
    "電話番号は090-1234-5678です。日中は仕事のため夕方以降にお願いします。",
    "キャンセルは可能でしょうか。よろしくお願いいたします。",
]
WINDOWS = ["株式会社①㈱髙﨑～の高橋です。", "髙橋 ① ～ ㈲小樽海産 №１ ⅱ"]
PATHS = [
    "保存先は C:\\Users\\yamada\\Documents\\申込書.pdf です。",
    "\\n や \\u3042 は文字どおり。",
]


def _b(charset: str, data: bytes) -> bytes:
    return b"=?" + charset.encode() + b"?B?" + base64.b64encode(data) + b"?="


def _headers(i: int, subject: bytes, content_type: bytes, cte: bytes) -> bytes:
    return (
        f"From: donor{i % 500}@example.jp\r\nTo: {ADDRESS}\r\n".encode()
        + b"Subject: "
        + subject
        + f"\r\nDate: Mon, 16 Dec 2024 10:15:00 +0900\r\nMessage-ID: <bench{RUN}.{i}@example.jp>\r\n".encode()
        + b"MIME-Version: 1.0\r\nContent-Type: "
        + content_type
        + b"\r\nContent-Transfer-Encoding: "
        + cte
        + b"\r\n\r\n"
    )


def make_message(i: int, rng: random.Random) -> tuple[bytes, str, str]:
    """(raw bytes, expected subject, expected body)."""
    lines = rng.sample(SENTENCES, 4)
    kind = i % 9
    subject = f"お問い合わせ（{i}）返礼品について"
    if kind == 0:  # ISO-2022-JP as Outlook writes it (CP50220)
        lines.insert(1, rng.choice(WINDOWS))
        body = "\r\n".join(lines) + "\r\n"
        subject = f"{subject}①髙"
        raw = _headers(
            i,
            _b("ISO-2022-JP", charsets.encode_iso2022jp(subject)),
            b"text/plain; charset=ISO-2022-JP",
            b"7bit",
        ) + charsets.encode_iso2022jp(body)
    elif kind == 1:  # Shift_JIS 8-bit (really CP932)
        lines.insert(2, rng.choice(WINDOWS))
        body = "\r\n".join(lines) + "\r\nソフト表示機能\r\n"
        raw = _headers(
            i, _b("Shift_JIS", subject.encode("cp932")), b"text/plain; charset=Shift_JIS", b"8bit"
        ) + body.encode("cp932")
    elif kind == 2:  # windows-31j quoted-printable
        lines.append(rng.choice(WINDOWS))
        body = "\r\n".join(lines) + "\r\n"
        raw = _headers(
            i,
            _b("windows-31j", subject.encode("cp932")),
            b"text/plain; charset=windows-31j",
            b"quoted-printable",
        ) + quopri.encodestring(body.encode("cp932"))
    elif kind == 3:  # EUC-JP base64
        body = "\n".join(lines) + "\n"
        raw = _headers(
            i, _b("EUC-JP", subject.encode("euc_jp")), b"text/plain; charset=EUC-JP", b"base64"
        ) + base64.encodebytes(body.encode("euc_jp"))
    elif kind == 4:  # UTF-8 8-bit with backslashes
        lines.append(rng.choice(PATHS))
        body = "\n".join(lines) + "\n"
        raw = (
            _headers(i, _b("UTF-8", subject.encode()), b"text/plain; charset=UTF-8", b"8bit")
            + body.encode()
        )
    elif kind == 5:  # UTF-8 base64 with Windows characters and a path
        lines += [rng.choice(WINDOWS), rng.choice(PATHS)]
        body = "\n".join(lines) + "\n"
        raw = _headers(
            i, _b("UTF-8", subject.encode()), b"text/plain; charset=utf-8", b"base64"
        ) + base64.encodebytes(body.encode())
    elif kind == 6:  # HTML only
        body = "\n".join(lines)
        html = "<html><body>" + "".join(f"<p>{s}</p>" for s in lines) + "</body></html>"
        raw = _headers(
            i, _b("UTF-8", subject.encode()), b"text/html; charset=UTF-8", b"base64"
        ) + base64.encodebytes(html.encode())
    elif kind == 7:  # subject split in the middle of UTF-8 and Shift_JIS characters
        lines.insert(0, rng.choice(WINDOWS))
        body = "\r\n".join(lines) + "\r\n"
        utf8, sjis = subject.encode(), "受領証明書①".encode("cp932")
        words = [
            _b("UTF-8", utf8[:7]),
            _b("UTF-8", utf8[7:]),
            _b("Shift_JIS", sjis[:3]),
            _b("Shift_JIS", sjis[3:]),
        ]
        subject = subject + "受領証明書①"
        raw = _headers(i, b"\r\n ".join(words), b"text/plain; charset=Shift_JIS", b"8bit")
        raw += body.encode("cp932")
    else:  # unlabelled Shift_JIS
        body = "\r\n".join(lines) + "\r\n"
        raw = _headers(i, _b("ISO-2022-JP", subject.encode("iso2022_jp")), b"text/plain", b"8bit")
        raw += body.encode("cp932")
    return raw, subject, body


def _norm(text: str) -> str:
    """Compare character for character, but not line-ending or blank-line styles."""
    return " ".join((text or "").split())


def _ours(raw: bytes) -> tuple[str, str]:
    mail = decoding.parse(raw)
    return mail.subject, mail.body


def _helpdesk(raw: bytes) -> tuple[str, str]:
    import email
    from email import policy
    from email.message import EmailMessage

    from django.utils import encoding
    from helpdesk import email as hd  # noqa: TID251 (the comparison is with helpdesk itself)

    message = email.message_from_string(
        encoding.force_str(raw, errors="replace"), EmailMessage, policy=policy.default
    )
    subject = hd.extract_email_subject(message)
    body, _full = hd.extract_email_message_content(message, [], True)
    return subject, body or ""


KINDS = [
    "iso-2022-jp(cp50220)",
    "shift_jis 8bit",
    "windows-31j qp",
    "euc-jp base64",
    "utf-8 8bit+\\",
    "utf-8 base64",
    "html only",
    "split subject",
    "unlabelled sjis",
]


def _score(parser, corpus) -> tuple[float, int, int, list[int]]:
    correct = errors = 0
    per_kind = [0] * len(KINDS)
    start = time.perf_counter()
    for i, (raw, subject, body) in enumerate(corpus):
        try:
            got_subject, got_body = parser(raw)
        except Exception:
            errors += 1
            continue
        if got_subject == subject and _norm(got_body) == _norm(body):
            correct += 1
            per_kind[i % len(KINDS)] += 1
    return time.perf_counter() - start, correct, errors, per_kind


def _db_latency_ms() -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        start = time.perf_counter()
        for _ in range(200):
            cursor.execute("SELECT 1")
        return (time.perf_counter() - start) / 200 * 1000


def _bench_municipality() -> Mailbox:
    code = next(
        f"99{n:03d}{d}"
        for n in range(1000)
        for d in range(10)
        if normalize.municipality_code_is_valid(f"99{n:03d}{d}")
    )
    municipality, _ = Municipality.objects.get_or_create(
        code=code,
        defaults={
            "name": "ベンチ市",
            "name_kana": "ベンチシ",
            "prefecture": "北海道",
            "answer_name": "ベンチ市ふるさと納税",
        },
    )
    address, _ = MunicipalityEmailAddress.objects.get_or_create(
        address=ADDRESS, defaults={"municipality": municipality}
    )
    box, _ = Mailbox.objects.get_or_create(address=address)
    admin, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"role": User.Role.OPERATOR_ADMIN}
    )
    services.triage_rules_add_defaults(actor=admin, municipality=municipality)
    return box


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--ingest",
        type=int,
        default=0,
        help="ingest end to end only the first N messages of the maildir (default: all)",
    )
    args = parser.parse_args()
    settings.MAIL_RATE_LIMIT_PER_HOUR = 10**9  # 500 senders × 20 mails is not abuse here
    rng = random.Random(20241216)
    corpus = [make_message(i, rng) for i in range(args.messages)]

    root = Path(tempfile.mkdtemp(prefix="mail-bench-"))
    try:
        import mailbox as stdlib_mailbox

        md = stdlib_mailbox.Maildir(root / "Maildir", create=True)
        ingest_n = args.ingest or len(corpus)
        for raw, _, _ in corpus[:ingest_n]:
            md.add(raw)
        box = _bench_municipality()
        before = InboundMessage.objects.filter(municipality=box.municipality).count()

        ours_parse_s, ours_ok, ours_err, ours_kinds = _score(_ours, corpus)
        hd_parse_s, hd_ok, hd_err, hd_kinds = _score(_helpdesk, corpus)

        latency_ms = _db_latency_ms()
        start = time.perf_counter()
        result = intake.ingest_maildir(str(root / "Maildir"), recipient=ADDRESS)
        ingest_s = time.perf_counter() - start
        stored = InboundMessage.objects.filter(municipality=box.municipality).count() - before
        processed = InboundMessage.objects.filter(
            municipality=box.municipality,
            message_id__startswith=f"bench{RUN}.",
            status=InboundMessage.Status.PROCESSED,
        ).count()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    n = len(corpus)
    print(f"messages: {n} (9 encodings, generated maildir)")
    print(f"database round trip (SELECT 1): {latency_ms:.2f} ms; about 30 queries per new ticket")
    print(
        f"tickets.mail ingest end to end ({result.fetched} messages): {ingest_s:.1f} s, "
        f"{result.fetched / ingest_s:.0f} msg/s "
        f"(stored {stored}, processed {processed}, quarantined {result.quarantined})"
    )
    print(
        f"tickets.mail decoding only:     {ours_parse_s:.2f} s, {n / ours_parse_s:.0f} msg/s, "
        f"exact {ours_ok}/{n}, errors {ours_err}"
    )
    print(
        f"django-helpdesk parsing:        {hd_parse_s:.2f} s, {n / hd_parse_s:.0f} msg/s, "
        f"exact {hd_ok}/{n}, errors {hd_err}"
    )
    total = [len(range(k, n, len(KINDS))) for k in range(len(KINDS))]
    print("exact per encoding (ours / helpdesk / total):")
    for kind, ours_k, hd_k, tot in zip(KINDS, ours_kinds, hd_kinds, total, strict=True):
        print(f"  {kind:22s} {ours_k:5d} / {hd_k:5d} / {tot}")
    print(
        f"speed ratio (decoding, ours / helpdesk): {hd_parse_s / ours_parse_s:.2f}×; "
        f"end-to-end ingest vs helpdesk parse-only: "
        f"{(result.fetched / ingest_s) / (n / hd_parse_s):.2f}×"
    )


if __name__ == "__main__":
    main()
