"""IMAP and POP3 polling against a real dovecot started for these tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crm.models import MunicipalityEmailAddress
from tests import mailserver
from tests.tickets.mail.conftest import ADDRESS_A, make_mail
from tickets.mail import tasks
from tickets.mail.models import InboundMessage, Mailbox
from tickets.models import Inquiry

CORPUS = Path(__file__).parent / "corpus"

pytestmark = pytest.mark.skipif(
    not mailserver.available(), reason="dovecot not installed (apt-get install dovecot-imapd)"
)


@pytest.fixture(scope="module")
def dovecot():
    with mailserver.running_dovecot(("city_a", "city_b", "pop_a")) as server:
        yield server


@pytest.fixture
def imap_box_a(dovecot, city_a):
    shutil.rmtree(dovecot.root / "mail" / "city_a", ignore_errors=True)
    address = MunicipalityEmailAddress.objects.create(municipality=city_a, address=ADDRESS_A)
    return Mailbox.objects.create(
        address=address,
        protocol=Mailbox.Protocol.IMAP,
        host="127.0.0.1",
        port=dovecot.imap_port,
        use_ssl=False,
        username="city_a",
        password=mailserver.PASSWORD,
    )


def test_imap_poll_turns_mail_into_tickets_and_empties_the_server(dovecot, imap_box_a, city_a):
    dovecot.deliver("city_a", (CORPUS / "iso2022jp_windows_chars.eml").read_bytes())
    dovecot.deliver("city_a", (CORPUS / "sjis_8bit.eml").read_bytes())
    dovecot.deliver(
        "city_a", make_mail(subject="自動返信", headers={"Auto-Submitted": "auto-replied"})
    )
    assert dovecot.imap_count("city_a") == 3

    assert tasks.mail_poll_all() == 1

    statuses = sorted(InboundMessage.objects.values_list("status", "source"))
    assert statuses == [("auto_reply", "imap"), ("processed", "imap"), ("processed", "imap")]
    descriptions = set(Inquiry.objects.values_list("ticket__description", flat=True))
    assert "いつもお世話になっております。\n株式会社①㈱髙﨑～の高橋です。" in descriptions
    assert Inquiry.objects.filter(municipality=city_a).count() == 2
    assert dovecot.imap_count("city_a") == 0
    imap_box_a.refresh_from_db()
    assert imap_box_a.last_polled_at is not None and imap_box_a.last_error == ""

    # A second poll finds nothing and changes nothing.
    tasks.mail_poll_mailbox(imap_box_a.pk)
    assert InboundMessage.objects.count() == 3


def test_imap_chunks_keep_arrival_order_and_bounds(dovecot, imap_box_a, settings):
    settings.MAIL_INGEST_CHUNK = 2
    settings.MAIL_INGEST_CHUNK_BYTES = 10**9
    dovecot.deliver("city_a", make_mail(message_id="<m0@example.jp>", subject="最初"))
    for i in range(1, 5):  # each a reply to the one before: only arrival order threads them
        dovecot.deliver(
            "city_a",
            make_mail(
                message_id=f"<m{i}@example.jp>",
                subject=f"Re {i}",
                headers={"In-Reply-To": f"<m{i - 1}@example.jp>"},
            ),
        )
    settings.MAIL_FETCH_BATCH = 4  # the fifth stays for the next poll

    assert tasks.mail_poll_mailbox(imap_box_a.pk) == 4
    assert dovecot.imap_count("city_a") == 1
    assert tasks.mail_poll_mailbox(imap_box_a.pk) == 1
    assert dovecot.imap_count("city_a") == 0
    assert Inquiry.objects.count() == 1
    assert InboundMessage.objects.filter(created_inquiry=False).count() == 4


def test_quarantined_mail_leaves_the_server_only_because_it_is_stored(
    dovecot, imap_box_a, settings
):
    settings.MAIL_RATE_LIMIT_PER_HOUR = 1
    for i in range(2):
        dovecot.deliver("city_a", make_mail(body=f"{i}"))
    tasks.mail_poll_mailbox(imap_box_a.pk)
    assert sorted(InboundMessage.objects.values_list("status", flat=True)) == [
        "processed",
        "quarantined",
    ]
    assert dovecot.imap_count("city_a") == 0


def test_the_mailbox_decides_the_city_not_the_to_header(dovecot, city_a, city_b):
    shutil.rmtree(dovecot.root / "mail" / "city_b", ignore_errors=True)
    address = MunicipalityEmailAddress.objects.create(
        municipality=city_b, address="furusato@fukuyama.example.jp"
    )
    box = Mailbox.objects.create(
        address=address,
        protocol=Mailbox.Protocol.IMAP,
        host="127.0.0.1",
        port=dovecot.imap_port,
        use_ssl=False,
        username="city_b",
        password=mailserver.PASSWORD,
    )
    dovecot.deliver("city_b", make_mail(to=ADDRESS_A))
    tasks.mail_poll_mailbox(box.pk)
    assert list(Inquiry.objects.values_list("municipality", flat=True)) == [city_b.pk]


def test_wrong_password_is_recorded_and_nothing_is_lost(dovecot, imap_box_a):
    dovecot.deliver("city_a", make_mail())
    Mailbox.objects.filter(pk=imap_box_a.pk).update(password="wrong")
    tasks.mail_poll_mailbox(imap_box_a.pk)
    imap_box_a.refresh_from_db()
    assert imap_box_a.last_error
    assert dovecot.imap_count("city_a") == 1
    assert not InboundMessage.objects.exists()


def test_pop3_poll(dovecot, city_a):
    shutil.rmtree(dovecot.root / "mail" / "pop_a", ignore_errors=True)
    address = MunicipalityEmailAddress.objects.create(municipality=city_a, address=ADDRESS_A)
    box = Mailbox.objects.create(
        address=address,
        protocol=Mailbox.Protocol.POP3,
        host="127.0.0.1",
        port=dovecot.pop3_port,
        use_ssl=False,
        username="pop_a",
        password=mailserver.PASSWORD,
    )
    dovecot.deliver("pop_a", (CORPUS / "eucjp_base64.eml").read_bytes())
    dovecot.deliver("pop_a", (CORPUS / "utf8_8bit_backslash.eml").read_bytes())
    tasks.mail_poll_mailbox(box.pk)
    assert sorted(InboundMessage.objects.values_list("source", "status")) == [
        ("pop3", "processed"),
        ("pop3", "processed"),
    ]
    descriptions = set(Inquiry.objects.values_list("ticket__description", flat=True))
    assert "返礼品のカニが届きません。伝票番号は１２３４です。" in descriptions
    assert (
        "保存先は C:\\Users\\yamada\\新しいフォルダ\\n です。\\u3042 も \\\\ もそのまま。"
        in descriptions
    )
    assert dovecot.imap_count("pop_a") == 0
