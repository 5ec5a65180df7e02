"""Mail intake throughput and accuracy on a generated 10,000-message mailbox, ours vs django-helpdesk.

    DATABASE_URL=postgres://…/scratch .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://…/scratch .venv/bin/python benchmarks/mail.py [--messages 10000]

Generates messages of mixed encodings (ISO-2022-JP as Outlook writes it, Shift_JIS 8-bit,
windows-31j quoted-printable, EUC-JP base64, UTF-8 8-bit with backslashes, UTF-8 base64,
HTML-only, subjects split mid-character across encoded words, unlabelled Shift_JIS); every
fifth message from the 2,001st on is the sender's reply to their earlier mail
(In-Reply-To), as a real inbox has. A dovecot IMAP server on loopback gets two identical
mailboxes, then, each timed in one process (one worker):

1. ``tickets.mail`` polls its mailbox over IMAP until it is empty: store raw, parse, thread,
   link records, rules, open the ticket or add the reply — everything committed;
2. vanilla django-helpdesk's ``get_email`` (``helpdesk.email.process_email``) polls the other
   into a helpdesk queue of its own. It stops at the first windows-31j message (LookupError)
   and leaves the mailbox undrained, so it also gets a third mailbox without those, to measure
   its speed and accuracy on what it survives.

Each ticket is then compared with the expected subject and body text: how many each system got
exactly right. Finally the decoders alone are compared on the same messages (ours vs
helpdesk's parsing path fed as its IMAP path feeds it: ``force_str(raw, errors="replace")``).

Use a scratch database: the run leaves a benchmark municipality, a helpdesk queue and their
tickets behind.
"""

from __future__ import annotations

import argparse
import base64
import os
import quopri
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from crm import normalize  # noqa: E402
from crm.models import Municipality, MunicipalityEmailAddress, User  # noqa: E402
from tests import mailserver  # noqa: E402
from tickets.mail import charsets, decoding, intake  # noqa: E402
from tickets.mail.models import InboundMessage, Mailbox  # noqa: E402
from tickets.mail.services import configuration  # noqa: E402

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


SENDERS = 2000
REPLY_EVERY = 5  # every fifth message from the second round of senders on is a reply


def message_id(i: int) -> str:
    return f"bench{RUN}.{i}@example.jp"


def _headers(i: int, subject: bytes, content_type: bytes, cte: bytes) -> bytes:
    reply = (
        f"In-Reply-To: <{message_id(i - SENDERS)}>\r\n".encode()
        if i >= SENDERS and i % REPLY_EVERY == REPLY_EVERY - 1
        else b""
    )
    return (
        f"From: donor{i % SENDERS}@example.jp\r\nTo: {ADDRESS}\r\n".encode()
        + reply
        + b"Subject: "
        + subject
        + f"\r\nDate: Mon, 16 Dec 2024 10:15:00 +0900\r\nMessage-ID: <{message_id(i)}>\r\n".encode()
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
    from helpdesk import email as hd

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
    with connection.cursor() as cursor:
        start = time.perf_counter()
        for _ in range(200):
            cursor.execute("SELECT 1")
        return (time.perf_counter() - start) / 200 * 1000


def _bench_municipality(imap_port: int) -> Mailbox:
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
    box.protocol, box.host, box.port, box.use_ssl = (
        Mailbox.Protocol.IMAP,
        "127.0.0.1",
        imap_port,
        False,
    )
    box.username, box.password, box.active = "ours", mailserver.PASSWORD, True
    box.save()
    admin, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"role": User.Role.OPERATOR_ADMIN}
    )
    configuration.triage_rules_add_defaults(actor=admin, municipality=municipality)
    return Mailbox.objects.select_related("address", "municipality").get(pk=box.pk)


def _helpdesk_queue(imap_port: int, user: str):
    from helpdesk.models import Queue

    Queue.objects.filter(slug__startswith="hdbench").update(allow_email_submission=False)
    return Queue.objects.create(
        title=f"helpdesk bench {RUN} {user}",
        slug=f"hdbench{RUN}{user}",
        email_address="helpdesk-bench@example.jp",
        allow_email_submission=True,
        email_box_type="imap",
        email_box_host="127.0.0.1",
        email_box_port=imap_port,
        email_box_ssl=False,
        email_box_user=user,
        email_box_pass=mailserver.PASSWORD,
        email_box_imap_folder="INBOX",
        email_box_interval=0,
        logging_type="none",
    )


def _ours_tickets() -> dict[int, tuple[str, str]]:
    """message index → (ticket title, text the ticket holds for that message)."""
    from helpdesk.models import FollowUp

    found = {}
    rows = InboundMessage.objects.filter(message_id__startswith=f"bench{RUN}.").values_list(
        "message_id", "inquiry__ticket__title", "inquiry__ticket__description", "followup_id"
    )
    comments = dict(
        FollowUp.objects.filter(pk__in=[r[3] for r in rows if r[3]]).values_list("pk", "comment")
    )
    for mid, title, description, followup_id in rows:
        index = int(mid.split(".")[1].split("@")[0])
        found[index] = (
            title or "",
            comments.get(followup_id, "") if followup_id else description or "",
        )
    return found


def _helpdesk_tickets(queue) -> dict[int, tuple[str, str]]:
    from helpdesk.models import FollowUp

    found = {}
    for mid, title, comment in FollowUp.objects.filter(ticket__queue=queue).values_list(
        "message_id", "ticket__title", "comment"
    ):
        if mid and f"bench{RUN}." in mid:
            index = int(mid.split(f"bench{RUN}.")[1].split("@")[0])
            found[index] = (title or "", comment or "")
    return found


def _exact(found: dict[int, tuple[str, str]], corpus, n: int) -> tuple[int, list[int]]:
    """Tickets whose subject and text are exactly what was sent (a reply's subject is the
    ticket's, so only its text is compared)."""
    correct, per_kind = 0, [0] * len(KINDS)
    for i in range(n):
        _, subject, body = corpus[i]
        got = found.get(i)
        if got is None:
            continue
        is_reply = i >= SENDERS and i % REPLY_EVERY == REPLY_EVERY - 1
        title_ok = is_reply or got[0] == subject
        if title_ok and _norm(got[1]) == _norm(body):
            correct += 1
            per_kind[i % len(KINDS)] += 1
    return correct, per_kind


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--helpdesk",
        type=int,
        default=0,
        help="messages for django-helpdesk's get_email (default: all; it is much slower)",
    )
    args = parser.parse_args()
    if not mailserver.available():
        sys.exit("dovecot is needed: bash scripts/system-deps.sh")
    settings.MAIL_RATE_LIMIT_PER_HOUR = 10**9  # 2,000 senders × 5 mails each within the hour
    settings.MAIL_FETCH_BATCH = 500
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # helpdesk mails
    rng = random.Random(20241216)
    n = args.messages
    corpus = [make_message(i, rng) for i in range(n)]
    n_hd = min(args.helpdesk or n, n)

    # helpdesk cannot decode windows-31j at all (LookupError): its second run leaves those out,
    # to measure its speed and accuracy on what it survives.
    survivable = [i for i in range(n_hd) if KINDS[i % len(KINDS)] != "windows-31j qp"]
    with mailserver.running_dovecot(("ours", "helpdesk", "helpdesk2")) as dovecot:
        dovecot.deliver_many("ours", [raw for raw, _, _ in corpus])
        dovecot.deliver_many("helpdesk", [raw for raw, _, _ in corpus[:n_hd]])
        dovecot.deliver_many("helpdesk2", [corpus[i][0] for i in survivable])
        box = _bench_municipality(dovecot.imap_port)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # planner statistics, as autovacuum keeps them live
        latency_ms = _db_latency_ms()

        start = time.perf_counter()
        fetched = quarantined = 0
        while True:
            result = intake.poll(box)
            fetched += result.fetched
            quarantined += result.quarantined
            if result.fetched == 0:
                break
        ours_s = time.perf_counter() - start
        left_ours = dovecot.imap_count("ours")

        from django.urls import clear_url_caches
        from helpdesk.email import process_email

        settings.ROOT_URLCONF = "benchmarks.helpdesk_urls"
        clear_url_caches()
        helpdesk = {}
        for user in ("helpdesk", "helpdesk2"):
            queue = _helpdesk_queue(dovecot.imap_port, user)
            start = time.perf_counter()
            process_email(quiet=True)  # what `manage.py get_email` runs
            helpdesk[user] = (queue, time.perf_counter() - start, dovecot.imap_count(user))

    ours_ok, ours_kinds = _exact(_ours_tickets(), corpus, n)
    queue, hd_full_s, hd_full_left = helpdesk["helpdesk"]
    hd_full = _helpdesk_tickets(queue)
    hd_full_ok, _ = _exact(hd_full, corpus, n_hd)
    queue, hd_s, hd_left = helpdesk["helpdesk2"]
    hd_found = _helpdesk_tickets(queue)
    hd_ok, hd_kinds = _exact(hd_found, corpus, n_hd)
    ours_parse_s, parse_ok, parse_err, _ = _score(_ours, corpus)
    hd_parse_s, hd_parse_ok, hd_parse_err, _ = _score(_helpdesk, corpus)

    replies = sum(1 for i in range(n) if i >= SENDERS and i % REPLY_EVERY == REPLY_EVERY - 1)
    print(
        f"mailbox: {n} messages, 9 encodings, {replies} of them replies; IMAP (dovecot, loopback)"
    )
    print(f"database round trip (SELECT 1): {latency_ms:.2f} ms")
    print(
        f"tickets.mail (one worker): {fetched} fetched in {ours_s:.1f} s = "
        f"{fetched / ours_s:.0f} msg/s; left on server {left_ours}, quarantined {quarantined}; "
        f"exact {ours_ok}/{n}"
    )
    print(
        f"django-helpdesk get_email, same {n_hd} messages: stopped after {hd_full_s:.1f} s with "
        f"{len(hd_full)} tickets, {hd_full_left} left on the server; exact {hd_full_ok}/{n_hd}"
    )
    m = len(survivable)
    print(
        f"django-helpdesk get_email, {m} messages without windows-31j: {hd_s:.1f} s = "
        f"{m / hd_s:.0f} msg/s; {len(hd_found)} tickets, {hd_left} left on the server; "
        f"exact {hd_ok}/{m}"
    )
    print(
        f"throughput ratio (ours / helpdesk on what it survives): {(fetched / ours_s) / (m / hd_s):.1f}×"
    )
    print("exact tickets per encoding (ours / helpdesk without windows-31j):")
    for k, kind in enumerate(KINDS):
        total = len(range(k, n, len(KINDS)))
        total_hd = sum(1 for i in survivable if i % len(KINDS) == k)
        print(f"  {kind:22s} {ours_kinds[k]:5d}/{total:<5d} {hd_kinds[k]:5d}/{total_hd}")
    print(
        f"decoding only: ours {n / ours_parse_s:.0f} msg/s exact {parse_ok}/{n} errors "
        f"{parse_err}; helpdesk parsing {n / hd_parse_s:.0f} msg/s exact {hd_parse_ok}/{n} "
        f"errors {hd_parse_err}"
    )


if __name__ == "__main__":
    main()
