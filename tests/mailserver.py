"""Real mail servers for tests and benchmarks: dovecot (IMAP and POP3 on loopback, plain
passwords) and an aiosmtpd SMTP server."""

from __future__ import annotations

import imaplib
import mailbox as stdlib_mailbox
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.processes import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
PASSWORD = "imap-test-password"


def available() -> bool:
    return os.path.exists(DOVECOT)


class Dovecot:
    def __init__(self, root: Path, users: tuple[str, ...]):
        self.root = root
        self.imap_port = free_port()
        self.pop3_port = free_port()
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
        (root / "passwd").write_text("".join(f"{u}:{{PLAIN}}{PASSWORD}\n" for u in users))
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
        self._give_to_mail_user(user)

    def deliver_many(self, user: str, raws: list[bytes]) -> None:
        path = self.maildir(user)
        path.parent.mkdir(parents=True, exist_ok=True)
        md = stdlib_mailbox.Maildir(path, create=True)
        for raw in raws:
            md.add(raw)
        self._give_to_mail_user(user)

    def _give_to_mail_user(self, user: str) -> None:
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


@contextmanager
def running_dovecot(users: tuple[str, ...]) -> Iterator[Dovecot]:
    # Not pytest's tmp_path: its parents are 0700 and dovecot's mail user must traverse them.
    root = Path(tempfile.mkdtemp(prefix="dovecot-"))
    root.chmod(0o755)
    server = Dovecot(root, users)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


class SmtpSink:
    """aiosmtpd handler keeping every message it accepted; ``on_data`` runs (in the server's
    thread) when DATA has arrived and before the server answers 250."""

    def __init__(self, on_data: Callable[[bytes], None] | None = None):
        self.messages: list[bytes] = []
        self.received = threading.Event()
        self.on_data = on_data

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.on_data is not None:
            self.on_data(envelope.content)
        self.messages.append(envelope.content)
        self.received.set()
        return "250 Message accepted"


@contextmanager
def running_smtp(handler: SmtpSink) -> Iterator[int]:
    """A real SMTP server on loopback; yields its port."""
    from aiosmtpd.controller import Controller

    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()
