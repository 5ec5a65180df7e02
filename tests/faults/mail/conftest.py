"""Real processes to break: a private redis-server, real Celery workers (prefork) to SIGKILL,
all sharing the test database (tests here are transactional)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from tests.faults.conftest import ROOT, RedisServer, database_url, wait_for

CELERY = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "celery"


@pytest.fixture
def private_redis(tmp_path) -> Iterator[RedisServer]:
    """A redis-server of this test only, not yet started (so it can start "down")."""
    server = RedisServer(tmp_path)
    yield server
    server.kill()


@pytest.fixture
def broker(private_redis) -> Iterator[str]:
    """This process's Celery app publishes to the private redis, as a web process would."""
    from config.celery import app

    saved = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = private_redis.url, False
    app._after_fork()  # drop pooled connections to the old broker (what Celery does on fork)
    yield private_redis.url
    app.conf.broker_url, app.conf.task_always_eager = saved
    app._after_fork()


class Worker:
    """``celery -A config worker --pool prefork -c 1`` in its own process group."""

    def __init__(self, log: Path, env: dict[str, str]):
        self.log = log
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        self.log.write_bytes(b"")
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [str(CELERY), "-A", "config", "worker", "--pool", "prefork", "-c", "1"]
                + ["--loglevel", "INFO", "--without-mingle", "--without-gossip"]
                + ["--without-heartbeat", "-n", f"fault{self.log.stem}@%h"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: " ready." in self.text(), timeout=90, what="the celery worker")
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def finished(self, task: str) -> int:
        """How many runs of this task have ended (succeeded or raised)."""
        return len(
            re.findall(rf"Task {re.escape(task)}\[[^\]]+\] (?:succeeded|raised)", self.text())
        )

    def kill(self) -> None:
        """SIGKILL, parent and pool child at once: no shutdown, no ack, no cleanup."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture
def celery_worker(tmp_path, private_redis) -> Iterator[Callable[..., Worker]]:
    """Start workers on the private redis and the test database; extra env as keywords."""
    started: list[Worker] = []

    def _start(**env: str) -> Worker:
        worker = Worker(
            tmp_path / f"worker{len(started) + 1}.log",
            {
                **os.environ,
                "DATABASE_URL": database_url(connection.settings_dict),
                "REDIS_URL": private_redis.url,
                "CELERY_TASK_ALWAYS_EAGER": "false",
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "PYTHONPATH": str(ROOT),
                **env,
            },
        )
        started.append(worker)
        return worker.start()

    yield _start
    for worker in started:
        worker.stop()
