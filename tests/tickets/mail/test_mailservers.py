"""IMAP and POP3 polling against a real dovecot started for these tests."""

from __future__ import annotations

import imaplib
import mailbox as stdlib_mailbox
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from crm.models import MunicipalityEmailAddress
from tests.tickets.mail.conftest import ADDRESS_A, make_mail
from tickets.mail import tasks
from tickets.mail.models import InboundMessage, Mailbox
from tickets.models import Inquiry

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
CORPUS = Path(__file__).parent / "corpus"
USERS = ("city_a", "city_b", "pop_a")
PASSWORD = "imap-test-password"

pytestmark = pytest.mark.skipif(
    not os.path.exists(DOVECOT), reason="dovecot not installed (apt-get install dovecot-imapd)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dovecot:
    def __init__(self, root: Path):
        self.root = root
        self.imap_port = _free_port()
        self.pop3_port = _free_port()
        if os.geteuid() == 0:
            # Mail processes may not run as root; login processes neither.
            mail_user = pwd.getpwnam("dovecot" if _has_user("dovecot") else "nobody")
            self.uid, self.gid = mail_user.pw_uid, mail_user.pw_gid
            login_user = "dovenull" if _has_user("dovenull") else "nobody"
            internal = "root"
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
            login_user = internal = pwd.getpwuid(self.uid).pw_name
        for d in ("run", "state", "mail"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "passwd").write_text("".join(f"{u}:{{PLAIN}}{PASSWORD}\n" for u in USERS))
        self.config = root / "dovecot.conf"
        self.config.write_text(
            f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u/Maildir
first_valid_uid = 1
default_internal_user = {internal}
default_internal_group = {"root" if internal == "root" else internal}
default_login_user = {login_user}
pop3_uidl_format = %08Xu%08Xv
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={root}/mail/%u
}}
"""
        )

    def start(self) -> None:
        # The daemon inherits stdout/stderr: pipes would never reach EOF, so discard them.
        subprocess.run(
            [DOVECOT, "-c", str(self.config)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.imap_port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError((self.root / "dovecot.log").read_text())

    def stop(self) -> None:
        subprocess.run(
            [DOVECOT, "-c", str(self.config), "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )

    def maildir(self, user: str) -> Path:
        return self.root / "mail" / user / "Maildir"

    def deliver(self, user: str, raw: bytes) -> None:
        """Drop a message into the user's maildir, as the local delivery agent would."""
        path = self.maildir(user)
        path.parent.mkdir(parents=True, exist_ok=True)
        stdlib_mailbox.Maildir(path, create=True).add(raw)
        for dirpath, dirnames, filenames in os.walk(self.root / "mail" / user):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.chown(name, self.uid, self.gid)

    def imap_count(self, user: str) -> int:
        conn = imaplib.IMAP4("127.0.0.1", self.imap_port)
        conn.login(user, PASSWORD)
        typ, data = conn.select("INBOX")
        conn.logout()
        return int(data[0])


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def dovecot():
    # Not pytest's tmp_path: its parents are 0700 and dovecot's mail user must traverse them.
    root = Path(tempfile.mkdtemp(prefix="dovecot-test-"))
    root.chmod(0o755)
    server = Dovecot(root)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


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
        password=PASSWORD,
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
        password=PASSWORD,
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
        password=PASSWORD,
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
