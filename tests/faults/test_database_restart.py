"""PostgreSQL restarts under a running server: the first webhooks afterwards are answered.

A private cluster (initdb/pg_ctl) with the project's tables, and the ASGI server as deployed
(uvicorn), once with the connection pool (DB_POOL_MAX_SIZE) and once with persistent connections
(DB_CONN_MAX_AGE). Both hold connections the restart kills.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from django.db import connection
from twilio.request_validator import RequestValidator

from tests.faults.conftest import PostgresCluster, Service, free_port, wait_for
from tests.telephony.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker) -> Iterator[tuple[PostgresCluster, str]]:
    pg = PostgresCluster()
    pg.init_and_start()
    try:
        with django_db_blocker.unblock():
            url = pg.copy_schema(connection.settings_dict, "furusato")
        yield pg, url
    finally:
        pg.stop()


def _server(workdir, database_url: str, **env: str) -> tuple[Service, str]:
    port = free_port()
    service = Service(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port)]
        + ["--host", "127.0.0.1", "--workers", "1", "--no-access-log"],
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": "",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_PUBLIC_BASE_URL": PUBLIC_BASE,
            "ALLOWED_HOSTS": "127.0.0.1",
            **env,
        },
        workdir / f"uvicorn-{port}.log",
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
            return response.status == 200

    wait_for(up, timeout=60, what="uvicorn", log=service.log)
    return service, base


def _webhook(base: str, n: int) -> int:
    """A call to a number nobody has: the view reads the database and answers <Hangup/>."""
    path = "/telephony/webhooks/voice/inbound/"
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": f"CA{n:032d}",
        "From": "+819012345678",
        "To": "+815000000000",
        "CallStatus": "ringing",
    }
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE + path, params)
    request = urllib.request.Request(
        base + path,
        data=urlencode(params).encode(),
        headers={"X-Twilio-Signature": signature},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            body = response.read()
            assert b"<Hangup" in body, body
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize(
    "connections",
    [{"DB_POOL_MAX_SIZE": "2"}, {"DB_CONN_MAX_AGE": "60"}],
    ids=["pool", "persistent"],
)
def test_first_webhooks_after_a_database_restart(workdir, cluster, connections):
    pg, url = cluster
    service, base = _server(workdir, url, **connections)
    try:
        warm = [_webhook(base, n) for n in range(4)]  # connections in use
        assert warm == [200] * 4, service.text()[-3000:]
        pg.restart()
        assert [_webhook(base, n) for n in range(4, 9)] == [200] * 5, service.text()[-3000:]
    finally:
        service.stop()
