"""Telephony latency: screen-pop payload, webhook → browser delivery, inbound webhook under load.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fz_scale REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python -m benchmarks.telephony [pop|delivery|webhooks|all] [--samples 500]

- pop: ``screen_pop_payload`` for callers sampled from the database (registered donors of the
  dialled municipality, and unknown numbers). Target p95 ≤ 20 ms. Read-only: the calls it needs
  are created inside a transaction that is rolled back.
- delivery: the ASGI server is started on loopback as the README deploys it (uvicorn, two worker
  processes; ``--server daphne`` for comparison); an agent's websocket is connected with a real
  session; the signed menu webhook that makes the call ring is sent and the time until the pop
  arrives on the websocket is measured. Target p95 ≤ 150 ms.
- webhooks: 50 calls at once, each going through inbound → menu → queue (hold loops) → hang-up
  (queue exit, status callback) with signed webhooks against the same server, after an
  unmeasured warm-up; the inbound-call webhook's latency is measured. Target p99 ≤ 50 ms.
  The load average is printed with the figures: the load generator shares the machine.

delivery and webhooks create a throw-away municipality, agent and calls, and delete them at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
BENCH_TOKEN = "benchmark-twilio-token"
os.environ["TWILIO_AUTH_TOKEN"] = BENCH_TOKEN
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402 (signs as Twilio)

from benchmarks.sessions import verified_session_key  # noqa: E402
from crm import normalize  # noqa: E402
from crm.models import Municipality, MunicipalityPhoneNumber, User  # noqa: E402
from telephony import calendar_services  # noqa: E402
from telephony.models import AgentPresence, Call  # noqa: E402
from telephony.selectors import screen_pop_payload  # noqa: E402

POP_TARGET_P95_MS = 20.0
DELIVERY_TARGET_P95_MS = 150.0
WEBHOOK_TARGET_P99_MS = 50.0


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(label: str, timings: list[float], q: int, target: float) -> bool:
    value = percentile(timings, q)
    ok = value <= target
    print(
        f"{label}: n={len(timings)} p50={percentile(timings, 50):.1f}ms "
        f"p95={percentile(timings, 95):.1f}ms p99={percentile(timings, 99):.1f}ms "
        f"max={max(timings):.1f}ms → p{q} {'OK' if ok else 'NG'} (≤{target:g}ms)"
    )
    return ok


# --- 1. screen-pop payload ----------------------------------------------------------------


class _Rollback(Exception):
    pass


def bench_pop(samples: int, rng: random.Random) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'crm_donorphone'::regclass")
        phones = max(cur.fetchone()[0], 1)
        pct = min(100.0, 300.0 * samples / phones)
        cur.execute(
            f"SELECT municipality_id, e164 FROM crm_donorphone TABLESAMPLE BERNOULLI ({pct})"
        )
        rows = cur.fetchall()
    rng.shuffle(rows)
    rows = rows[:samples]
    if not rows:
        print(
            "pop: この DB には寄附者の電話番号がありません（seed_demo --scale を実行してください）"
        )
        return False
    known: list[float] = []
    unknown: list[float] = []
    matches = 0
    try:
        with transaction.atomic():
            user = User.objects.create(username=f"bench-pop-{time.time_ns()}", role="supervisor")
            user.municipalities.set({m for m, _ in rows})
            now = timezone.now()
            calls = Call.objects.bulk_create(
                [Call(municipality_id=m, from_e164=e164, offered_at=now) for m, e164 in rows]
                + [
                    Call(
                        municipality_id=m,
                        from_e164=f"+8190{rng.randrange(10**8):08d}",
                        offered_at=now,
                    )
                    for m, _ in rows
                ]
            )
            user = User.objects.get(pk=user.pk)  # fresh: the access policy caches per object
            for call in calls[:20]:  # warm connection and caches
                screen_pop_payload(user=user, call_id=call.pk)
            for i, call in enumerate(calls):
                started = time.perf_counter()
                payload = screen_pop_payload(user=user, call_id=call.pk)
                elapsed = (time.perf_counter() - started) * 1000
                (known if i < len(rows) else unknown).append(elapsed)
                matches += bool(payload["matches"]) if i < len(rows) else 0
            raise _Rollback
    except _Rollback:
        pass
    print(f"pop: 登録済みの発信者 {len(rows)} 件中 {matches} 件が寄附者に一致")
    ok = report("screen_pop_payload（登録済みの発信者）", known, 95, POP_TARGET_P95_MS)
    ok &= report("screen_pop_payload（未登録の発信者）", unknown, 95, POP_TARGET_P95_MS)
    return ok


# --- a server and a throw-away municipality -----------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(server: str, port: int, workers: int) -> list[str]:
    """The ASGI server as the README deploys it (uvicorn, several workers), or daphne alone."""
    if server == "daphne":
        return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--lifespan",
        "off",
        "--no-access-log",
        # Longer than the client's (the proxy's) idle time, so the server never closes a
        # kept-alive connection just as a request is sent on it.
        "--timeout-keep-alive",
        "75",
    ]


SERVER = {"kind": "uvicorn", "workers": 2}


@contextmanager
def asgi_server():
    port = free_port()
    env = {
        **os.environ,
        "TWILIO_AUTH_TOKEN": BENCH_TOKEN,
        "TWILIO_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "DB_POOL_MAX_SIZE": os.environ.get("DB_POOL_MAX_SIZE", "8"),
        "LOG_LEVEL": "ERROR",
    }
    proc = subprocess.Popen(
        [*server_command(SERVER["kind"], port, SERVER["workers"]), "config.asgi:application"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open("/tmp/telephony-bench-server.log", "w"),  # noqa: SIM115
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _free_municipality_code() -> str:
    used = set(Municipality.objects.values_list("code", flat=True))
    for n in range(99000, 99999):
        for check in range(10):
            code = f"{n}{check}"
            if normalize.municipality_code_is_valid(code) and code not in used:
                return code
    raise RuntimeError("no free municipality code")


@contextmanager
def bench_world():
    """A municipality open round the clock, one agent with a verified session, a donor."""
    from tests.factories import DonorPhoneFactory, ShipmentFactory

    # Created in one transaction: a failure half-way leaves nothing behind.
    with transaction.atomic():
        municipality = Municipality.objects.create(
            code=_free_municipality_code(),
            name="ベンチ市",
            name_kana="ベンチシ",
            prefecture="東京都",
            answer_name="ベンチ市ふるさと納税コールセンター",
        )
        number = MunicipalityPhoneNumber.objects.create(
            municipality=municipality, e164="+81359990000"
        )
        calendar_services.business_calendar_apply_preset(
            municipality=municipality,
            preset="every_day_including_holidays",
            opens=datetime.time(0, 0),
            closes=datetime.time(23, 59),
        )
        agent = User.objects.create(username=f"bench-agent-{time.time_ns()}", role="agent")
        agent.municipalities.set([municipality])
        session_key = verified_session_key(agent)
        caller = "+819011110000"
        for _ in range(3):
            shipment = ShipmentFactory(
                donation__donor__municipality=municipality, gift_item__municipality=municipality
            )
        DonorPhoneFactory(donor=shipment.donation.donor, e164=caller)
    try:
        yield {
            "municipality": municipality,
            "number": number.e164,
            "agent": agent,
            "session": session_key,
            "caller": caller,
        }
    finally:
        from django.contrib.sessions.models import Session

        from donations_sync.models import Donation, GiftItem, Shipment

        Session.objects.filter(session_key=session_key).delete()
        Call.objects.filter(municipality=municipality).delete()
        AgentPresence.objects.filter(user=agent).delete()
        agent.delete()
        Shipment.objects.filter(municipality=municipality).delete()
        Donation.objects.filter(municipality=municipality).delete()
        GiftItem.objects.filter(municipality=municipality).delete()
        municipality.donors.all().delete()
        municipality.providers.all().delete()
        _delete_municipality(municipality)


def _delete_municipality(municipality: Municipality) -> None:
    """With the ticket queue (and its permission) the ticket store made for it."""
    from django.contrib.auth.models import Permission

    from tickets.models import MunicipalityQueue

    queues = [link.queue for link in MunicipalityQueue.objects.filter(municipality=municipality)]
    municipality.delete()
    for queue in queues:
        Permission.objects.filter(codename=f"queue_access_{queue.slug}").delete()
        queue.delete()


class Signer:
    def __init__(self, base: str) -> None:
        self.base = base
        self.validator = RequestValidator(BENCH_TOKEN)

    def request(self, path: str, params: dict[str, str]) -> tuple[str, dict[str, str], dict]:
        url = path if path.startswith("http") else self.base + path
        return url, params, {"X-Twilio-Signature": self.validator.compute_signature(url, params)}


def call_params(sid: str, caller: str, to: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": settings.TWILIO_ACCOUNT_SID,
        "CallSid": sid,
        "From": caller,
        "To": to,
        "Direction": "inbound",
        "CallStatus": "ringing",
        **extra,
    }


def _gather_action(xml: str) -> str:
    import xml.etree.ElementTree as ET

    return ET.fromstring(xml).find("Gather").get("action")


def _wait_url(xml: str) -> str:
    import xml.etree.ElementTree as ET

    return ET.fromstring(xml).find("Enqueue").get("waitUrl")


# --- 2. webhook → browser ------------------------------------------------------------------


async def _delivery(base: str, world: dict, samples: int) -> list[float]:
    import aiohttp

    signer = Signer(base)
    ws_url = base.replace("http", "ws") + "/ws/telephony/agent/"
    headers = {"Origin": "http://127.0.0.1", "Cookie": f"sessionid={world['session']}"}
    timings = []
    responded: list[float] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, headers=headers) as ws:
        first = await ws.receive_json(timeout=10)
        assert first["type"] == "state", first
        for i in range(samples + 5):
            sid = f"CABENCHDELIVERY{time.time_ns()}{i}"
            url, params, h = signer.request(
                "/telephony/webhooks/voice/inbound/",
                call_params(sid, world["caller"], world["number"]),
            )
            async with http.post(url, data=params, headers=h) as r:
                action = _gather_action(await r.text())
            url, params, h = signer.request(
                action, call_params(sid, world["caller"], world["number"], Digits="1")
            )
            started = time.perf_counter()
            async with http.post(url, data=params, headers=h) as r:
                await r.read()
            responded.append((time.perf_counter() - started) * 1000)
            while True:
                message = await ws.receive_json(timeout=10)
                if message["type"] == "pop":
                    break
            if i >= 5:
                timings.append((time.perf_counter() - started) * 1000)
            url, params, h = signer.request(
                "/telephony/webhooks/status/call/",
                call_params(
                    sid,
                    world["caller"],
                    world["number"],
                    CallStatus="completed",
                    SequenceNumber="9",
                ),
            )
            async with http.post(url, data=params, headers=h) as r:
                await r.read()
            # The agent never answered, so they are free again: drain the presence pushes.
            await asyncio.sleep(0.01)
    print(
        f"  （参考）メニュー webhook の応答: p50={percentile(responded, 50):.1f}ms "
        f"p95={percentile(responded, 95):.1f}ms"
    )
    return timings


def bench_delivery(samples: int) -> bool:
    with bench_world() as world, asgi_server() as base:
        AgentPresence.objects.update_or_create(
            user=world["agent"], defaults={"state": "available", "since": timezone.now()}
        )
        timings = asyncio.run(_delivery(base, world, samples))
    return report("webhook → ブラウザ（画面ポップ到着）", timings, 95, DELIVERY_TARGET_P95_MS)


# --- 3. 50 concurrent calls ----------------------------------------------------------------


async def _post(http, signer: Signer, url: str, params: dict[str, str]) -> tuple[str, float]:
    url, params, headers = signer.request(url, params)
    started = time.perf_counter()
    async with http.post(url, data=params, headers=headers) as response:
        body = await response.text()
        assert response.status in (200, 204), body
    return body, (time.perf_counter() - started) * 1000


def _queue_exit_url(xml: str) -> str:
    import xml.etree.ElementTree as ET

    return ET.fromstring(xml).find("Enqueue").get("action")


async def _one_call(
    http, signer: Signer, world: dict, rng: random.Random, pace: float, inbound: list[float] | None
) -> None:
    """One caller: greeting and menu, a few hold-music loops in the queue, then hangs up.

    The webhooks Twilio sends for such a call, in order: the inbound call, the menu choice, the
    queue's wait URL once per hold loop, the <Enqueue> action when the caller hangs up in the
    queue, and the final status callback. ``pace`` is how long each step takes (a real greeting
    runs ~10 s, a hold loop ~15 s).
    """
    sid = f"CABENCHLOAD{time.time_ns()}{rng.randrange(10**6)}"
    caller = f"+8190{rng.randrange(10**8):08d}"
    params = call_params(sid, caller, world["number"])
    body, elapsed = await _post(http, signer, "/telephony/webhooks/voice/inbound/", params)
    if inbound is not None:
        inbound.append(elapsed)
    await asyncio.sleep(rng.uniform(0.5, 1.5) * pace)
    params["CallStatus"] = "in-progress"
    body, _ = await _post(http, signer, _gather_action(body), {**params, "Digits": "1"})
    wait_url, exit_url = _wait_url(body), _queue_exit_url(body)
    for tick in range(3):
        await asyncio.sleep(rng.uniform(0.5, 1.5) * pace)
        await _post(
            http,
            signer,
            wait_url,
            {**params, "QueuePosition": "5", "QueueTime": str(int(tick * pace))},
        )
    await asyncio.sleep(rng.uniform(0, 1) * pace)
    await _post(http, signer, exit_url, {**params, "QueueResult": "hangup", "QueueTime": "30"})
    await _post(
        http,
        signer,
        "/telephony/webhooks/status/call/",
        {**params, "CallStatus": "completed", "SequenceNumber": "3", "CallDuration": "40"},
    )


WEBHOOKS_PER_CALL = 7


async def _load(
    base: str, world: dict, concurrent: int, seconds: float, pace: float, rng: random.Random
) -> tuple[list[float], list[float]]:
    import aiohttp

    signer = Signer(base)
    paced: list[float] = []
    burst: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        # Warm-up, not measured: every worker process imports, connects and fills its caches
        # once, as it would in its first seconds of real traffic.
        for _ in range(3):
            await asyncio.gather(
                *(_one_call(http, signer, world, rng, 0.05, None) for _ in range(concurrent))
            )
        deadline = time.monotonic() + seconds

        async def line(first_delay: float) -> None:
            # One of the lines: as soon as a call ends, the next caller dials in.
            await asyncio.sleep(first_delay)
            while time.monotonic() < deadline:
                await _one_call(http, signer, world, rng, pace, paced)

        await asyncio.gather(*(line(rng.uniform(0, 5 * pace)) for _ in range(concurrent)))
        # For reference: all the lines' inbound webhooks in the same instant.
        for _ in range(3):
            await asyncio.gather(
                *(_one_call(http, signer, world, rng, 0.05, burst) for _ in range(concurrent))
            )
    return paced, burst


def load_average() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def bench_webhooks(concurrent: int, seconds: float, pace: float, rng: random.Random) -> bool:
    with bench_world() as world, asgi_server() as base:
        print(f"  サーバ: {SERVER['kind']} ×{SERVER['workers']}（開始時 {load_average()}）")
        paced, burst = asyncio.run(_load(base, world, concurrent, seconds, pace, rng))
        print(f"  （終了時 {load_average()}）")
    print(
        f"  {concurrent} 回線が常時通話中、各ステップ約 {pace:g} 秒: "
        f"{len(paced) / seconds:.1f} 着信/秒、約 {len(paced) * WEBHOOKS_PER_CALL / seconds:.0f}"
        " webhook/秒"
    )
    ok = report(f"着信 webhook（同時 {concurrent} 通話）", paced, 99, WEBHOOK_TARGET_P99_MS)
    report(
        f"着信 webhook（{concurrent} 通話が同時刻に着信、参考）", burst, 99, WEBHOOK_TARGET_P99_MS
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "which", nargs="?", default="all", choices=["pop", "delivery", "webhooks", "all"]
    )
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--pace", type=float, default=8.0, help="seconds per call step")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--server", choices=["uvicorn", "daphne"], default="uvicorn", help="for comparison"
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    args = parser.parse_args()
    SERVER.update(kind=args.server, workers=1 if args.server == "daphne" else args.workers)
    rng = random.Random(args.seed)
    ok = True
    if args.which in ("pop", "all"):
        ok &= bench_pop(args.samples, rng)
    if args.which in ("delivery", "all"):
        ok &= bench_delivery(min(args.samples, 200))
    if args.which in ("webhooks", "all"):
        ok &= bench_webhooks(args.calls, args.seconds, args.pace, rng)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
