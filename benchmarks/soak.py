"""Soak: nothing lost, nothing doubled, nobody stuck — through Redis and PostgreSQL restarts.

    .venv/bin/python -m benchmarks.soak [--minutes 30] [--rate 1.0] [--agents 20]
        [--wallboards 5] [--no-faults] [--seed 1]

The benchmark never touches the machine's shared PostgreSQL or Redis: it starts its own (a
``redis-server`` without persistence and a PostgreSQL cluster in a temporary directory, both on
free loopback ports), migrates a fresh database, and starts the product as the README deploys it:
uvicorn with two workers, a Celery worker and Celery beat. It then plays Twilio and the people:

- one new call per second (``--rate``) for ``--minutes``; about a fifth dial a second
  municipality whose line is closed and leave a voicemail, the rest press 1 in the menu, ring
  the agents and are answered (or queue, or end in voicemail when the queue takes too long);
  every webhook is signed as Twilio signs it, and retried like Twilio retries (5xx or no answer
  in 15 s: up to 3 more times, 5 s apart);
- ``--agents`` agents with the screen-pop websocket open, answering on their (simulated)
  softphone, entering the wrap-up code when the page offers it and setting themselves 在席
  again when they find themselves ログオフ/離席; ``--wallboards`` supervisors with the wallboard
  open; every socket reconnects with the page's backoff (1 s doubling to 30 s) when dropped;
- faults on a schedule scaled to the run: Redis killed and started again (empty) twice, and
  PostgreSQL restarted once (fast shutdown, 10 s down).

After the load it waits (up to 3 minutes) for the system to settle and reports calls offered
against calls recorded, voicemails left against voicemail tickets, agents and calls left stuck,
socket drops, and webhook latency and 5xx answers inside and outside the outage windows (a
window lasts from the fault until the service is back plus ``RECOVERY_MARGIN_SECONDS``). The
last line says whether nothing was lost and nothing doubled; the exit status is 0 only if so and
nobody was left stuck. The product's logs stay in the directory printed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime
import glob
import json
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from benchmarks.sessions import verified_session_key  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OPEN_NUMBER = "+81359990001"
CLOSED_NUMBER = "+81359990002"
VOICEMAIL_SHARE = 0.2
WEBHOOK_TIMEOUT_SECONDS = 15.0  # Twilio's own default
WEBHOOK_RETRIES = 3
WEBHOOK_RETRY_SPACING_SECONDS = 5.0
RECOVERY_MARGIN_SECONDS = 15.0
PG_DOWN_SECONDS = 10.0
SETTLE_SECONDS = 180.0
QUEUE_PATIENCE_SECONDS = 300.0
BENCH_TOKEN = "benchmark-twilio-token"  # as benchmarks.telephony signs

# Not the development secret, which the settings refuse without DEBUG (the product runs as deployed).
BENCH_SECRET = "soak-benchmark-secret-key-not-for-production"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# --- private services and the product's processes -------------------------------------------


class Services:
    """A private Redis and PostgreSQL, and the product's processes, all torn down on exit."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fz-soak-"))
        self.logs = self.tmp / "logs"
        self.logs.mkdir()
        self.data = self.tmp / "pgdata"
        self.redis_port = free_port()
        self.pg_port = free_port()
        self.http_port = free_port()
        self.redis: subprocess.Popen | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
        if not bins:
            raise SystemExit("PostgreSQL のサーバ（/usr/lib/postgresql/*/bin）が見つかりません")
        self.pg_bin = Path(bins[-1])
        self.pg_running = False

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/soak"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    # Redis

    def redis_start(self) -> None:
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--protected-mode", "no"],
            stdout=open(self.logs / "redis.log", "a"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while not _redis_ping(self.redis_port):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)

    def redis_kill(self) -> None:
        if self.redis is not None and self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait()
        self.redis = None

    # PostgreSQL (refuses to run as root: the cluster belongs to the postgres user)

    def _as_postgres(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.pg_bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True)

    def pg_init(self) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
            os.chown(self.logs, pw.pw_uid, pw.pw_gid)
        self._as_postgres(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        self.pg_start()
        self._as_postgres(
            "createdb", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "soak"
        )

    def pg_start(self) -> None:
        options = (
            f"-p {self.pg_port} -k {self.tmp} -c listen_addresses=127.0.0.1 "
            # Durability against a crash of the machine is not what is measured here, and the
            # disk is shared: restarts (fast shutdown) keep every committed row regardless.
            "-c fsync=off -c max_connections=100"
        )
        self._as_postgres(
            "pg_ctl", "-D", str(self.data), "-l", str(self.logs / "postgres.log"),
            "-o", options, "-w", "start",
        )  # fmt: skip
        self.pg_running = True

    def pg_stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        self.pg_running = False

    # The product

    def product_env(self, token: str) -> dict[str, str]:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "TWILIO_AUTH_TOKEN": token,
            "SECRET_KEY": BENCH_SECRET,
            "TWILIO_PUBLIC_BASE_URL": self.base,
            "DB_POOL_MAX_SIZE": "8",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        return env

    def migrate(self, token: str) -> None:
        env = {**self.product_env(token), "DB_POOL_MAX_SIZE": "0"}
        with open(self.logs / "migrate.log", "w") as log:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--no-input"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )

    def start_product(self, token: str) -> None:
        env = self.product_env(token)
        from benchmarks.telephony import server_command

        commands = {
            "uvicorn": [*server_command("uvicorn", self.http_port, 2), "config.asgi:application"],
            "celery-worker": [sys.executable, "-m", "celery", "-A", "config", "worker", "-c", "2"]
            + ["--loglevel", "WARNING", "--without-mingle", "--without-gossip"],
            "celery-beat": [sys.executable, "-m", "celery", "-A", "config", "beat"]
            + ["--loglevel", "WARNING", "--schedule", str(self.tmp / "celerybeat-schedule")],
        }
        for name, command in commands.items():
            self.procs[name] = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=open(self.logs / f"{name}.log", "w"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not _wait_port(self.http_port, 60):
            raise RuntimeError(f"uvicorn did not start: see {self.logs / 'uvicorn.log'}")

    def product_exits(self) -> dict[str, int]:
        """Product processes that ended by themselves (they should not, whatever fails)."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def close(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.redis_kill()
        if self.data.exists():
            self.pg_stop()
            shutil.rmtree(self.data, ignore_errors=True)
        # The logs stay for a look afterwards.


# --- the world: two municipalities, agents, supervisors ------------------------------------


def _session_for(user) -> str:
    return verified_session_key(user, device_name="soak")


def build_world(agents: int, wallboards: int) -> dict:
    from django.db import transaction

    from benchmarks.telephony import _free_municipality_code
    from crm.models import Municipality, MunicipalityPhoneNumber, User
    from telephony import calendar_services
    from telephony.models import PhoneSettings

    with transaction.atomic():
        cities = []
        for name, kana, number in (
            ("ソーク市", "ソークシ", OPEN_NUMBER),
            ("ソーク町", "ソークチョウ", CLOSED_NUMBER),
        ):
            city = Municipality.objects.create(
                code=_free_municipality_code(),
                name=name,
                name_kana=kana,
                prefecture="東京都",
                answer_name=f"{name}ふるさと納税コールセンター",
            )
            MunicipalityPhoneNumber.objects.create(municipality=city, e164=number)
            cities.append(city)
        open_city, closed_city = cities
        calendar_services.business_calendar_apply_preset(
            municipality=open_city,
            preset="every_day_including_holidays",
            opens=datetime.time(0, 0),
            closes=datetime.time(23, 59, 59),
        )
        # No weekly hours: the line is closed every day, so every call leaves a voicemail.
        PhoneSettings.objects.get_or_create(municipality=closed_city)
        people = {"agents": [], "supervisors": []}
        for role, key, count in (("agent", "agents", agents), ("supervisor", "supervisors", wallboards)):  # fmt: skip
            for i in range(count):
                user = User.objects.create(username=f"soak-{role}-{i:02d}", role=role)
                user.municipalities.set(cities)
                people[key].append({"id": user.pk, "session": _session_for(user)})
    return {"open": open_city.pk, "closed": closed_city.pk, **people}


# --- measurements --------------------------------------------------------------------------


@dataclass
class Window:
    what: str
    start: float
    back: float | None = None

    def covers(self, t: float) -> bool:
        end = (self.back if self.back is not None else float("inf")) + RECOVERY_MARGIN_SECONDS
        return self.start <= t <= end


@dataclass
class Attempt:
    at: float
    ms: float
    kind: str
    status: int | str  # HTTP status, or the client error's name
    call_sid: str


@dataclass
class Tally:
    attempts: list[Attempt] = field(default_factory=list)
    gave_up: collections.Counter = field(default_factory=collections.Counter)
    offered: dict[str, str] = field(default_factory=dict)  # CallSid → "open"/"closed"
    voicemails: dict[str, str] = field(default_factory=dict)  # CallSid → RecordingSid
    answered: int = 0
    queued: int = 0
    dropped_calls: collections.Counter = field(default_factory=collections.Counter)


@dataclass
class SocketStats:
    kind: str
    connects: int = 0
    drops: int = 0
    failures: int = 0
    messages: int = 0
    connected: bool = False


# --- Twilio --------------------------------------------------------------------------------


def _query(url: str, key: str) -> int | None:
    values = parse_qs(urlsplit(url).query).get(key)
    return int(values[0]) if values and values[0].isdigit() else None


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class Twilio:
    """Plays Twilio: follows the TwiML our webhooks answer with, as the caller's call proceeds."""

    def __init__(self, http, base: str, tally: Tally, agents: dict[int, Agent], rng) -> None:
        from benchmarks.telephony import Signer

        self.http = http
        self.signer = Signer(base)
        self.tally = tally
        self.agents = agents
        self.rng = rng
        self.queue: list[str] = []
        self.busy: set[int] = set()  # agents on a (simulated) softphone call

    async def webhook(self, url: str, params: dict[str, str]) -> str | None:
        """POST as Twilio does; on 5xx or no answer, retry. None when every attempt failed."""
        import aiohttp

        kind = urlsplit(url).path.strip("/").removeprefix("telephony/webhooks/")
        for attempt in range(1 + WEBHOOK_RETRIES):
            if attempt:
                await asyncio.sleep(WEBHOOK_RETRY_SPACING_SECONDS)
            full, data, headers = self.signer.request(url, params)
            started = time.monotonic()
            try:
                async with self.http.post(
                    full,
                    data=data,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS),
                ) as response:
                    body = await response.text()
                    status: int | str = response.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                body, status = "", type(exc).__name__
            self.tally.attempts.append(
                Attempt(
                    started,
                    (time.monotonic() - started) * 1000,
                    kind,
                    status,
                    params.get("ParentCallSid") or params.get("CallSid", ""),
                )
            )
            if isinstance(status, int) and status < 500:
                return body
        self.tally.gave_up[kind] += 1
        return None

    async def call(self, closed: bool) -> None:
        from benchmarks.telephony import call_params

        sid = _sid("CA")
        caller = f"+8190{self.rng.randrange(10**8):08d}"
        params = call_params(sid, caller, CLOSED_NUMBER if closed else OPEN_NUMBER)
        self.tally.offered[sid] = "closed" if closed else "open"
        state = {"seq": 0, "sid": sid}
        body = await self.webhook("/telephony/webhooks/voice/inbound/", params)
        params["CallStatus"] = "in-progress"
        if body is None:
            self.tally.dropped_calls["inbound"] += 1
        else:
            await self.follow(body, params, state)
        params["CallStatus"] = "completed"
        await self.webhook(
            "/telephony/webhooks/status/call/",
            {**params, "SequenceNumber": str(state["seq"]), "CallDuration": "30"},
        )

    async def follow(self, body: str, params: dict[str, str], state: dict) -> None:
        """Run the TwiML document, fetching the next one when a verb's action says so."""
        for _ in range(30):
            try:
                verbs = list(ET.fromstring(body))
            except ET.ParseError:
                self.tally.dropped_calls["bad TwiML"] += 1
                return
            following = None
            for verb in verbs:
                if verb.tag == "Gather":
                    await asyncio.sleep(self.rng.uniform(2, 4))  # greeting, then the key
                    following = await self.webhook(verb.get("action"), {**params, "Digits": "1"})
                elif verb.tag == "Dial":
                    following = await self.dial(verb, params)
                elif verb.tag == "Enqueue":
                    following = await self.enqueue(verb, params)
                elif verb.tag == "Record":
                    following = await self.record(verb, params)
                elif verb.tag == "Hangup":
                    return
                else:
                    continue
                if following is None:
                    self.tally.dropped_calls[verb.tag] += 1
                    return
                break
            if following is None:
                return  # the document ran out: Twilio hangs up
            body = following
        self.tally.dropped_calls["loop"] += 1

    async def dial(self, dial: ET.Element, params: dict[str, str]) -> str | None:
        legs = []
        for target in dial:
            agent_id = _query(target.get("url", ""), "agent")
            legs.append((agent_id, target, _sid("CA")))
        sid = params["CallSid"]

        def leg_params(leg_sid: str, status: str, **extra: str) -> dict[str, str]:
            return {
                **params,
                "CallSid": leg_sid,
                "ParentCallSid": sid,
                "Direction": "outbound-dial",
                "CallStatus": status,
                **extra,
            }

        await asyncio.gather(
            *(
                self.webhook(t.get("statusCallback"), leg_params(s, "ringing", SequenceNumber="0"))
                for _, t, s in legs
            )
        )
        # Agents answer on their softphone (it rings whatever the screen-pop socket is doing).
        free = [leg for leg in legs if leg[0] in self.agents and leg[0] not in self.busy]
        winner = self.rng.choice(free) if free else None
        if winner is not None:
            await asyncio.sleep(self.rng.uniform(1, 3))
        else:  # rings until the <Dial> timeout
            timeout = dial.get("timeout", "")
            await asyncio.sleep(int(timeout) if timeout.isdigit() else 20)
        answered = None
        if winner is not None:
            self.busy.add(winner[0])
            answered = await self.webhook(
                winner[1].get("url"), leg_params(winner[2], "in-progress")
            )
            if answered is not None and "<Hangup" in answered:
                answered = None  # someone else had the call
            if answered is None:
                self.busy.discard(winner[0])
        if answered is None:
            # Nobody took it within the ring timeout.
            await asyncio.gather(
                *(
                    self.webhook(
                        t.get("statusCallback"), leg_params(s, "no-answer", SequenceNumber="1")
                    )
                    for _, t, s in legs
                )
            )
            return await self.webhook(dial.get("action"), {**params, "DialCallStatus": "no-answer"})
        agent_id, target, leg_sid = winner
        agent = self.agents[agent_id]
        call_id = _query(dial.get("action", ""), "call")
        agent.softphone_answered(call_id)
        self.tally.answered += 1
        await asyncio.gather(
            self.webhook(
                target.get("statusCallback"), leg_params(leg_sid, "in-progress", SequenceNumber="1")
            ),
            *(
                self.webhook(t.get("statusCallback"), leg_params(s, "canceled", SequenceNumber="1"))
                for a, t, s in legs
                if s != leg_sid
            ),
        )
        talk = self.rng.uniform(5, 15)
        await asyncio.sleep(talk)
        agent.softphone_ended()
        self.busy.discard(agent_id)
        await self.webhook(
            target.get("statusCallback"),
            leg_params(leg_sid, "completed", SequenceNumber="2", CallDuration=str(int(talk))),
        )
        following = await self.webhook(
            dial.get("action"),
            {**params, "DialCallStatus": "completed", "DialCallDuration": str(int(talk))},
        )
        if dial.get("recordingStatusCallback"):
            self._later(
                dial.get("recordingStatusCallback"),
                {
                    **params,
                    "RecordingSid": _sid("RE"),
                    "RecordingUrl": "https://api.twilio.com/recording",
                    "RecordingStatus": "completed",
                    "RecordingDuration": str(int(talk)),
                },
            )
        return following

    async def enqueue(self, enqueue: ET.Element, params: dict[str, str]) -> str | None:
        sid = params["CallSid"]
        self.tally.queued += 1
        self.queue.append(sid)
        entered = time.monotonic()
        try:
            while True:
                waited = time.monotonic() - entered
                if waited > QUEUE_PATIENCE_SECONDS:
                    result = "hangup"
                    break
                hold = await self.webhook(
                    enqueue.get("waitUrl"),
                    {
                        **params,
                        "QueuePosition": str(self.queue.index(sid) + 1),
                        "CurrentQueueSize": str(len(self.queue)),
                        "QueueTime": str(int(waited)),
                    },
                )
                if hold is not None and "<Leave" in hold:
                    result = "leave"
                    break
                await asyncio.sleep(5)  # the hold message plays, then Twilio asks again
        finally:
            self.queue.remove(sid)
        return await self.webhook(
            enqueue.get("action"),
            {**params, "QueueResult": result, "QueueTime": str(int(time.monotonic() - entered))},
        )

    async def record(self, record: ET.Element, params: dict[str, str]) -> str | None:
        await asyncio.sleep(self.rng.uniform(3, 6))  # the caller speaks
        recording = {
            "RecordingSid": _sid("RE"),
            "RecordingUrl": "https://api.twilio.com/recording",
            "RecordingDuration": "5",
        }
        self.tally.voicemails[params["CallSid"]] = recording["RecordingSid"]
        following = await self.webhook(
            record.get("action"), {**params, **recording, "Digits": "hangup"}
        )
        self._later(
            record.get("recordingStatusCallback"),
            {**params, **recording, "RecordingStatus": "completed"},
        )
        return following

    def _later(self, url: str, params: dict[str, str]) -> None:
        # Recording callbacks arrive a moment after the call, on their own.
        async def send() -> None:
            await asyncio.sleep(self.rng.uniform(1, 3))
            await self.webhook(url, params)

        task = asyncio.ensure_future(send())
        _background.add(task)
        task.add_done_callback(_background.discard)


_background: set[asyncio.Task] = set()


# --- the people ----------------------------------------------------------------------------


class Browser:
    """A page with one of the telephony websockets open, reconnecting as the page does."""

    def __init__(self, http, base: str, session: str, path: str, stats: SocketStats) -> None:
        self.http = http
        self.base = base
        self.csrf = secrets.token_hex(16)  # 32 characters, as Django's own cookie holds
        self.cookies = f"sessionid={session}; csrftoken={self.csrf}"
        self.url = base.replace("http", "ws", 1) + path
        self.stats = stats
        self.stopping = False
        self.reloading = False
        self.ws = None

    async def run(self) -> None:
        import aiohttp

        delay = 1.0
        while not self.stopping:
            try:
                async with self.http.ws_connect(
                    self.url,
                    headers={"Origin": "http://127.0.0.1", "Cookie": self.cookies},
                    heartbeat=20,
                    timeout=aiohttp.ClientWSTimeout(ws_close=5),
                ) as ws:
                    self.ws = ws
                    opened = False
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            continue
                        if not opened:
                            opened = True
                            self.stats.connects += 1
                            self.stats.connected = True
                            delay = 1.0
                        self.stats.messages += 1
                        await self.handle(json.loads(message.data))
                    self.ws = None
                    if not opened:
                        self.stats.failures += 1  # closed before saying anything (e.g. 4403)
                    elif not (self.stopping or self.reloading):
                        self.stats.drops += 1
            except (TimeoutError, aiohttp.ClientError, OSError):
                self.stats.failures += 1
            self.stats.connected = False
            self.ws = None
            if self.reloading:
                self.reloading = False
                continue
            if self.stopping:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def handle(self, message: dict) -> None:
        pass

    async def reload(self) -> None:
        if self.ws is not None:
            self.reloading = True
            await self.ws.close()

    async def stop(self) -> None:
        self.stopping = True
        if self.ws is not None:
            await self.ws.close()

    async def post(self, path: str, data: dict[str, str]) -> tuple[int | str, dict]:
        import aiohttp

        try:
            async with self.http.post(
                self.base + path,
                data=data,
                headers={
                    "Cookie": self.cookies,
                    "X-CSRFToken": self.csrf,
                    "Accept": "application/json",
                },
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=15),
            ) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = {}
                return response.status, body if isinstance(body, dict) else {}
        except (TimeoutError, aiohttp.ClientError) as exc:
            return type(exc).__name__, {}


class Agent(Browser):
    """An agent with the screen pop open: wraps up when asked, and wants to take calls."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.presence: str | None = None
        self.wrap_due: set[int] = set()
        self.on_phone: int | None = None
        self.phone_ended_at: float | None = None
        self.pops = 0
        self.wrap_ups = 0
        self.reloads = 0
        self.post_failures: collections.Counter = collections.Counter()

    def softphone_answered(self, call_id: int | None) -> None:
        self.on_phone = call_id
        self.phone_ended_at = None

    def softphone_ended(self) -> None:
        self.phone_ended_at = time.monotonic()

    async def handle(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "state":
            self.presence = message.get("presence")
            pop = message.get("pop") or {}
            if pop.get("call", {}).get("needs_wrap_up"):
                self.wrap_due.add(pop["call"]["id"])
        elif kind == "pop":
            self.pops += 1
        elif kind == "call":
            if message.get("call", {}).get("needs_wrap_up"):
                self.wrap_due.add(message["call"]["id"])
        elif kind == "presence":
            self.presence = message.get("presence")

    async def work(self) -> None:
        """What the person at the desk does, once a second."""
        while not self.stopping:
            await asyncio.sleep(1)
            if not self.stats.connected:
                continue
            for call_id in sorted(self.wrap_due):
                status, body = await self.post(
                    f"/telephony/calls/{call_id}/wrap-up/",
                    # Every answered call ends on an inquiry: answered on the spot.
                    {
                        "disposition": "resolved",
                        "inquiry": "quick",
                        "answer_category": "shipping_status",
                        "answer_note": "配送状況を案内",
                    },
                )
                if status == 200 or (status == 409 and "入力済み" in body.get("error", "")):
                    self.wrap_due.discard(call_id)
                    self.wrap_ups += status == 200
                    if self.on_phone == call_id:
                        self.on_phone = None
                        self.phone_ended_at = None
                    self.presence = "available" if status == 200 else self.presence
                else:
                    self.post_failures[f"後処理 {status}"] += 1
                    await asyncio.sleep(2)
            if self.presence in ("offline", "break") and not self.wrap_due:
                status, body = await self.post("/telephony/presence/", {"state": "available"})
                if status == 200:
                    self.presence = body.get("presence", self.presence)
                else:
                    self.post_failures[f"在席 {status}"] += 1
                    await asyncio.sleep(2)
            # The call ended on the softphone a minute ago and the page never offered its
            # wrap-up: the agent reloads the page (counted: the product should not need it).
            if (
                self.on_phone
                and self.phone_ended_at
                and time.monotonic() - self.phone_ended_at > 60
                and self.on_phone not in self.wrap_due
            ):
                self.reloads += 1
                self.phone_ended_at = time.monotonic()
                await self.reload()


# --- the run -------------------------------------------------------------------------------


async def faults(svc: Services, windows: list[Window], started: float, seconds: float) -> None:
    redis_down = min(45.0, max(15.0, seconds / 40))
    schedule = [(0.2, "Redis"), (0.45, "PostgreSQL"), (0.7, "Redis")]
    for share, what in schedule:
        await asyncio.sleep(max(0.0, started + share * seconds - time.monotonic()))
        window = Window(what, time.monotonic())
        windows.append(window)
        if what == "Redis":
            await asyncio.to_thread(svc.redis_kill)
            await asyncio.sleep(redis_down)
            await asyncio.to_thread(svc.redis_start)
        else:
            await asyncio.to_thread(svc.pg_stop)
            await asyncio.sleep(PG_DOWN_SECONDS)
            await asyncio.to_thread(svc.pg_start)
        window.back = time.monotonic()


def _db(fn, *args):
    """Run an ORM read in a thread, with a fresh connection (the server may have restarted)."""
    from django.db import connection

    def run():
        try:
            connection.close()
            return fn(*args)
        finally:
            connection.close()

    return asyncio.to_thread(run)


def snapshot(world: dict, tally: Tally) -> dict:
    from django.db.models import Count

    from telephony.models import AgentPresence, Call
    from tickets.models import Inquiry

    cities = [world["open"], world["closed"]]
    rows = Call.objects.filter(call_sid__in=list(tally.offered))
    per_sid = collections.Counter(rows.values_list("call_sid", flat=True))
    voicemail_sids = list(tally.voicemails)
    vm_rows = Call.objects.filter(call_sid__in=voicemail_sids)
    presences = dict(
        AgentPresence.objects.filter(user_id__in=[a["id"] for a in world["agents"]]).values_list(
            "user_id", "state"
        )
    )
    ticketed = set(vm_rows.filter(inquiry__isnull=False).values_list("call_sid", flat=True))
    return {
        "missing_calls": sorted(set(tally.offered) - set(per_sid)),
        "missing_tickets": sorted(set(voicemail_sids) - ticketed),
        "recorded": len(per_sid),
        "doubled": sum(n - 1 for n in per_sid.values() if n > 1),
        "extra_rows": Call.objects.filter(municipality_id__in=cities)
        .exclude(call_sid__in=list(tally.offered))
        .count(),
        "not_ended": rows.filter(ended_at__isnull=True).count(),
        "vm_flagged": vm_rows.filter(voicemail=True).count(),
        "vm_ticketed": vm_rows.filter(inquiry__isnull=False).count(),
        "vm_ticket_ids": vm_rows.filter(inquiry__isnull=False)
        .values("inquiry_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "tickets": Inquiry.objects.filter(municipality_id__in=cities).count(),
        "presence": collections.Counter(presences.get(a["id"], "offline") for a in world["agents"]),
        "stuck_agents": AgentPresence.objects.filter(
            user_id__in=[a["id"] for a in world["agents"]],
            state__in=["ringing", "on_call", "wrap_up"],
        ).count()
        + AgentPresence.objects.filter(
            user_id__in=[a["id"] for a in world["agents"]], current_call__ended_at__isnull=False
        )
        .exclude(state="wrap_up")
        .count(),
        "unwrapped": Call.objects.filter(
            call_sid__in=list(tally.offered),
            answered_by__isnull=False,
            ended_at__isnull=False,
            disposition__isnull=True,
        ).count(),
    }


def settled(snap: dict, tally: Tally) -> bool:
    return (
        snap["not_ended"] == 0
        and snap["vm_ticketed"] >= len(tally.voicemails)
        and snap["stuck_agents"] == 0
        and snap["unwrapped"] == 0
        and snap["presence"].get("available", 0) == sum(snap["presence"].values())
    )


async def run(svc: Services, world: dict, args) -> tuple[dict, Tally, list, list, list, float]:
    import aiohttp

    rng = random.Random(args.seed)
    tally = Tally()
    windows: list[Window] = []
    agent_stats = [SocketStats("agent") for _ in world["agents"]]
    board_stats = [SocketStats("wallboard") for _ in world["supervisors"]]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as http:
        agents = {
            a["id"]: Agent(http, svc.base, a["session"], "/ws/telephony/agent/", s)
            for a, s in zip(world["agents"], agent_stats, strict=True)
        }
        boards = [
            Browser(http, svc.base, s["session"], "/ws/telephony/wallboard/", st)
            for s, st in zip(world["supervisors"], board_stats, strict=True)
        ]
        people = [asyncio.ensure_future(b.run()) for b in [*agents.values(), *boards]]
        people += [asyncio.ensure_future(a.work()) for a in agents.values()]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            a.presence == "available" for a in agents.values()
        ):
            await asyncio.sleep(0.5)
        print(
            f"  在席 {sum(a.presence == 'available' for a in agents.values())}/{len(agents)} 名、"
            f"ウォールボード {sum(s.connected for s in board_stats)}/{len(boards)} 面"
        )
        twilio = Twilio(http, svc.base, tally, agents, rng)
        seconds = args.minutes * 60
        started = time.monotonic()
        fault_task = (
            asyncio.ensure_future(faults(svc, windows, started, seconds))
            if not args.no_faults
            else None
        )
        calls: list[asyncio.Task] = []
        n = 0
        next_report = started + 60
        while (now := time.monotonic()) < started + seconds:
            calls.append(asyncio.ensure_future(twilio.call(rng.random() < VOICEMAIL_SHARE)))
            n += 1
            if now >= next_report:
                next_report += 60
                print(
                    f"  {int(now - started) // 60} 分: 着信 {n}、応答 {tally.answered}、"
                    f"留守電 {len(tally.voicemails)}、待ち呼 {len(twilio.queue)}、{_load()}",
                    flush=True,
                )
            await asyncio.sleep(max(0.0, started + n / args.rate - time.monotonic()))
        if fault_task is not None:
            await fault_task
        for result in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(result, BaseException):
                # A fault of the benchmark itself: counted, and the first one shown.
                if not tally.dropped_calls[f"benchmark {type(result).__name__}"]:
                    traceback.print_exception(result)
                tally.dropped_calls[f"benchmark {type(result).__name__}"] += 1
        while _background:
            await asyncio.gather(*list(_background), return_exceptions=True)
        load_ended = time.monotonic()
        print(f"  負荷終了（{load_ended - started:.0f} 秒）、落ち着くのを待ちます…", flush=True)
        snap = await _db(snapshot, world, tally)
        while time.monotonic() - load_ended < SETTLE_SECONDS and not settled(snap, tally):
            await asyncio.sleep(5)
            snap = await _db(snapshot, world, tally)
        settle_seconds = time.monotonic() - load_ended
        for person in [*agents.values(), *boards]:
            await person.stop()
        for task in people:
            task.cancel()
        await asyncio.gather(*people, return_exceptions=True)
    extras = {
        "pops": sum(a.pops for a in agents.values()),
        "wrap_ups": sum(a.wrap_ups for a in agents.values()),
        "reloads": sum(a.reloads for a in agents.values()),
        "post_failures": sum((a.post_failures for a in agents.values()), collections.Counter()),
        "settle_seconds": settle_seconds,
        "started": started,
    }
    snap.update(extras)
    return snap, tally, windows, agent_stats, board_stats, seconds


def _load() -> str:
    return "load " + ", ".join(f"{v:.1f}" for v in os.getloadavg())


def report(snap: dict, tally: Tally, windows: list[Window], agent_stats, board_stats, svc) -> bool:
    from benchmarks.telephony import percentile

    print()
    print("== 障害 ==")
    if not windows:
        print("  なし（--no-faults）")
    for w in windows:
        down = (w.back or w.start) - w.start
        print(
            f"  {w.what}: {w.start - snap['started']:.0f} 秒目から {down:.0f} 秒停止"
            f"（集計上の障害時間帯: 復旧後 {RECOVERY_MARGIN_SECONDS:g} 秒まで）"
        )
    exits = svc.product_exits()
    if exits:
        print(f"  製品のプロセスが終了しました: {exits}")

    offered = len(tally.offered)
    lost_calls = offered - snap["recorded"]
    print("== 通話 ==")
    print(
        f"  着信 {offered} 件 → 記録 {snap['recorded']} 件"
        f"（失われた {lost_calls} 件、重複 {snap['doubled']} 件、"
        f"着信していない記録 {snap['extra_rows']} 件）"
    )
    print(
        f"  応答 {tally.answered} 件、待ち呼に入った {tally.queued} 件、"
        f"終話していない記録 {snap['not_ended']} 件、後処理未入力 {snap['unwrapped']} 件"
    )
    if tally.dropped_calls:
        print(
            "  webhook が応答せず途中で切れた通話: "
            + "、".join(f"{k} {v} 件" for k, v in tally.dropped_calls.most_common())
        )
    vms = len(tally.voicemails)
    print("== 留守番電話 ==")
    print(
        f"  録音 {vms} 件 → 留守番電話として記録 {snap['vm_flagged']} 件、"
        f"問合せあり {snap['vm_ticketed']} 件（問合せなし {vms - snap['vm_ticketed']} 件）"
    )
    print(
        f"  両自治体の問合せ {snap['tickets']} 件（録音ごとに 1 件のはず: "
        f"{'一致' if snap['tickets'] == snap['vm_ticketed'] else '不一致'}）"
    )
    print("== オペレーター ==")
    presence = "、".join(f"{k} {v}" for k, v in sorted(snap["presence"].items()))
    print(f"  終了時の状態: {presence}（止まったまま {snap['stuck_agents']} 名）")
    print(
        f"  画面ポップ {snap['pops']} 回、後処理 {snap['wrap_ups']} 回、"
        f"後処理が出ず再読み込み {snap['reloads']} 回"
    )
    if snap["post_failures"]:
        print(
            "  失敗した操作: "
            + "、".join(f"{k} ×{v}" for k, v in snap["post_failures"].most_common())
        )
    print("== ソケット ==")
    for label, stats in (("オペレーター", agent_stats), ("ウォールボード", board_stats)):
        print(
            f"  {label} {len(stats)} 本: 切断 {sum(s.drops for s in stats)} 回、"
            f"接続 {sum(s.connects for s in stats)} 回（再接続 "
            f"{sum(s.connects for s in stats) - len(stats)} 回）、"
            f"接続失敗 {sum(s.failures for s in stats)} 回、"
            f"受信 {sum(s.messages for s in stats)} 件"
        )

    def inside(a: Attempt) -> bool:
        return any(w.covers(a.at) for w in windows)

    print("== webhook ==")
    ok_out = [
        a.ms
        for a in tally.attempts
        if isinstance(a.status, int) and a.status < 500 and not inside(a)
    ]
    ok_in = [
        a.ms for a in tally.attempts if isinstance(a.status, int) and a.status < 500 and inside(a)
    ]
    for label, values in (("障害時間帯の外", ok_out), ("障害時間帯", ok_in)):
        if len(values) >= 2:
            print(
                f"  {label}: n={len(values)} p50={percentile(values, 50):.0f}ms "
                f"p95={percentile(values, 95):.0f}ms p99={percentile(values, 99):.0f}ms "
                f"max={max(values):.0f}ms"
            )
    failed = collections.Counter(
        (a.kind, a.status, "内" if inside(a) else "外")
        for a in tally.attempts
        if not (isinstance(a.status, int) and a.status < 500)
    )
    failed_out = sum(n for (_, _, where), n in failed.items() if where == "外")
    print(
        f"  5xx・無応答: 障害時間帯 {sum(failed.values()) - failed_out} 回、"
        f"時間帯の外 {failed_out} 回"
    )
    for (kind, status, where), n in sorted(failed.items(), key=lambda x: -x[1])[:12]:
        print(f"    {kind} {status}（時間帯の{where}）×{n}")
    four = collections.Counter(
        (a.kind, a.status)
        for a in tally.attempts
        if isinstance(a.status, int) and 400 <= a.status < 500
    )
    if four:
        print("  4xx: " + "、".join(f"{k} {s} ×{n}" for (k, s), n in four.most_common(6)))
    if tally.gave_up:
        print(
            f"  再送 {WEBHOOK_RETRIES} 回でも届かなかった webhook: "
            + "、".join(f"{k} ×{v}" for k, v in tally.gave_up.most_common())
        )
    started = snap["started"]

    def trail(sid: str) -> str:
        # What each of the call's webhooks answered, and when (seconds into the run).
        steps = [
            a
            for a in tally.attempts
            if a.call_sid == sid and not (a.kind == "voice/wait" and a.status == 200)
        ]
        return "、".join(
            f"{a.kind} {a.status}@{a.at - started:.0f}s{'*' if inside(a) else ''}" for a in steps
        )

    missing = [("記録されなかった通話", sid) for sid in snap["missing_calls"][:5]]
    missing += [("問合せにならなかった留守電", sid) for sid in snap["missing_tickets"][:5]]
    if missing:
        print("== 失われたもの（webhook の応答と送信時刻、* は障害時間帯）==")
        for label, sid in missing:
            print(f"  {label} {sid}: {trail(sid)}")
    print(f"  ログ: {svc.logs}")
    print()
    lost = lost_calls + (vms - snap["vm_ticketed"])
    doubled = (
        snap["doubled"]
        + snap["extra_rows"]
        + snap["vm_ticket_ids"]
        + max(0, snap["tickets"] - snap["vm_ticketed"])
    )
    stuck = snap["stuck_agents"] + snap["not_ended"] + snap["unwrapped"]
    print(
        f"lost: {lost}, doubled: {doubled}, stuck: {stuck} (settled after {snap['settle_seconds']:.0f} s)"
    )
    ok = lost == 0 and doubled == 0
    print(f"nobody stuck: {'yes' if stuck == 0 else 'no'}")
    print(f"nothing lost, nothing doubled: {'yes' if ok else 'no'}")
    return ok and stuck == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=1.0, help="new calls per second")
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--wallboards", type=int, default=5)
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    def interrupted(*_):
        raise KeyboardInterrupt

    # Also SIGINT: started in the background by a shell, Python would otherwise ignore Ctrl+C.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    svc = Services()
    ok = False
    try:
        print(
            f"専用の Redis（:{svc.redis_port}）と PostgreSQL（:{svc.pg_port}）を起動…", flush=True
        )
        svc.redis_start()
        svc.pg_init()
        # The benchmark's own Django (world set-up, final counts) uses the private services too.
        os.environ.update(
            DATABASE_URL=svc.database_url,
            REDIS_URL=svc.redis_url,
            TWILIO_PUBLIC_BASE_URL=svc.base,
            SECRET_KEY=BENCH_SECRET,
            DB_POOL_MAX_SIZE="0",
        )
        print("マイグレーション…", flush=True)
        svc.migrate(BENCH_TOKEN)
        import benchmarks.telephony as telephony_bench  # django.setup() with the private DB

        token = telephony_bench.BENCH_TOKEN  # the one its Signer signs with
        world = build_world(args.agents, args.wallboards)
        from django.db import connection

        connection.close()
        svc.start_product(token)
        print(
            f"uvicorn ×2、Celery worker・beat を起動。{args.minutes:g} 分、{args.rate:g} 着信/秒、"
            f"オペレーター {args.agents} 名、ウォールボード {args.wallboards} 面"
            f"{'、障害なし' if args.no_faults else '、Redis 停止 2 回・PostgreSQL 再起動 1 回'}"
            f"（開始時 {_load()}）",
            flush=True,
        )
        snap, tally, windows, agent_stats, board_stats, _ = asyncio.run(run(svc, world, args))
        print(f"（終了時 {_load()}）")
        ok = report(snap, tally, windows, agent_stats, board_stats, svc)
    except KeyboardInterrupt:
        print("\n中断しました。後片付け中…", file=sys.stderr)
    finally:
        svc.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
