"""Private servers the fault tests start and kill: redis-server, PostgreSQL, Celery, uvicorn.

Nothing here is faked: the tests break the real things the product runs on and check that what
the product promises still holds. Missing binaries fail the tests with a clear message instead of
skipping them (scripts/system-deps.sh installs them).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.processes import database_url, free_port  # noqa: F401 - also for the tests here

ROOT = Path(__file__).resolve().parents[2]


def wait_for(
    check: Callable[[], object], *, timeout: float = 30, what: str, log: Path | None = None
) -> object:
    """Polls ``check`` until it gives something truthy, and returns that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if value := check():
                return value
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


class RedisServer:
    """One redis-server on its own port, no persistence; stop() and start() keep the port."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run scripts/system-deps.sh")
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        wait_for(client.ping, timeout=10, what="redis-server")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


class PostgresCluster:
    """A private PostgreSQL 15 cluster in a temp dir (initdb/pg_ctl), restartable at will."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            pytest.fail(
                "PostgreSQL server binaries (initdb) are missing: run scripts/system-deps.sh"
            )
        self.bin = Path(bins[-1]).parent
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.workdir / "data"
        # initdb refuses to run as root; the cluster then belongs to the postgres account.
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.run_as:
            shutil.chown(self.workdir, user="postgres")

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30"]
            + ["-o", options, "-l", str(self.workdir / "postgres.log"), *args],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def init_and_start(self) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust"]
            + ["-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("-m", "fast", "restart")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("-m", "immediate", "stop")
        shutil.rmtree(self.workdir, ignore_errors=True)

    def copy_schema(self, source: dict, name: str) -> str:
        """A database here with the test database's tables (no data); its URL."""
        subprocess.run(
            [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
            + [name],
            check=True,
        )
        env = {**os.environ, "PGPASSWORD": source.get("PASSWORD") or ""}
        dump = subprocess.run(
            [str(self.bin / "pg_dump"), "--schema-only", "--no-owner", "-h"]
            + [source.get("HOST") or "127.0.0.1", "-p", str(source.get("PORT") or 5432)]
            + ["-U", source.get("USER") or "postgres", source["NAME"]],
            check=True,
            capture_output=True,
            env=env,
        ).stdout
        subprocess.run(
            [str(self.bin / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"]
            + ["-p", str(self.port), "-U", "postgres", "-d", name],
            input=dump,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"


class Service:
    """A project process (Celery worker, uvicorn) with its own environment and log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.handle = open(log, "wb")  # noqa: SIM115 - kept open for the process
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return [int(p) for p in out.split()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.handle.close()


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="faults-") as path:
        yield Path(path)


@pytest.fixture(scope="module")
def redis_server(workdir) -> Iterator[RedisServer]:
    (workdir / "redis").mkdir()
    server = RedisServer(workdir / "redis")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def project_on(settings, redis_server):
    """This test process's broker, channel layer and cache on the private Redis."""
    from channels.layers import channel_layers

    from config.celery import app

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url,
        }
    }
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_server.url]},
        }
    }
    channel_layers.backends = {}
    previous = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = redis_server.url, False
    app._pool = None
    app.amqp._producer_pool = None
    yield redis_server
    app.conf.broker_url, app.conf.task_always_eager = previous
    app._pool = None
    app.amqp._producer_pool = None
    channel_layers.backends = {}


def worker_env(redis_url: str, **extra: str) -> dict[str, str]:
    from django.db import connection

    return {
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LOG_LEVEL": "INFO",
        **extra,
    }


def start_worker(workdir: Path, redis_url: str, *, beat: bool, **env: str) -> Service:
    """`celery -A config worker` with one prefork child (and beat inside, if asked)."""
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "prefork", "-c", "1"]
    argv += ["--without-gossip", "--without-mingle", "-l", "info", "-n", f"w{free_port()}@%h"]
    if beat:
        argv += ["-B", "-s", str(workdir / "beat-schedule")]
    worker = Service(argv, worker_env(redis_url, **env), workdir / f"worker-{free_port()}.log")
    wait_for(lambda: "ready." in worker.text(), timeout=60, what="celery worker", log=worker.log)
    return worker


@pytest.fixture(scope="module")
def worker(workdir, redis_server, django_db_blocker) -> Iterator[Service]:
    """A Celery worker (one prefork child) with beat inside, sweeping jobs every second.

    Jobs are only re-sent by the sweep after JOBS_VISIBILITY_SECONDS (5 minutes): within a test,
    a second run can only come from the broker giving the message back.
    """
    with django_db_blocker.unblock():
        service = start_worker(
            workdir,
            redis_server.url,
            beat=True,
            JOBS_SWEEP_SECONDS="1",
            JOBS_VISIBILITY_SECONDS="300",
            TELEPHONY_RECONCILE_SECONDS="3600",
            MAIL_POLL_SECONDS="3600",
        )
    yield service
    service.stop()
