"""List and search pages end to end through HTTP: p50/p95 per page, target p95 ≤ 150 ms.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fz_tickets_bench \\
        .venv/bin/python -m benchmarks.lists [--runs 40]

Runs on the database ``benchmarks/tickets.py`` builds (1M tickets over 30 municipalities). The
ASGI server is started on loopback as the README deploys it (uvicorn, two worker processes, see
``benchmarks.telephony``); an agent serving 5 municipalities (≈166k tickets in scope) signs in
with a verified TOTP session, and each page is fetched over keep-alive HTTP after a warm-up:

- the ticket list with a common 4-character word (受領証明, ~50k matches), a common
  2-character word (破損) and a common 2-character kana pair (なか);
- the console's search for 破損 and なか;
- the ticket list's first page and a deep page (the cursor of the row ~50,000 rows down, where
  OFFSET pagination used to read and discard 49,950 rows);
- the list's built-in views (未割当, 期限超過, 返答待ち) and its other sorts (最終更新, 期限);
- the API's list: first page, search for 破損, and the same deep position through its cursor.

The load average is printed with the figures: the client shares the machine with the server.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from benchmarks.sessions import verified_session_key  # noqa: E402
from benchmarks.telephony import asgi_server, load_average, percentile  # noqa: E402
from crm.models import User  # noqa: E402
from crm.pagination import encode_cursor  # noqa: E402
from tickets.models import Inquiry  # noqa: E402

TARGET_P95_MS = 150.0
DEEP_ROWS = 50_000


def signed_in_session(user: User) -> str:
    return verified_session_key(user, device_name="bench-lists")


def deep_position(user: User) -> tuple[str, str]:
    """The page and API cursors of the row DEEP_ROWS down the user's newest-first list."""
    row = (
        Inquiry.objects.visible_to(user)
        .order_by("-created_at", "-pk")
        .values("pk", "created_at")[DEEP_ROWS]
    )
    page_cursor = encode_cursor(row["created_at"], row["pk"])
    # DRF's CursorPagination cursor: the position of the ordering's first field.
    api_cursor = base64.b64encode(urlencode({"p": str(row["created_at"])}).encode()).decode()
    return page_cursor, api_cursor


def measure(http, base: str, path: str, runs: int) -> list[float]:
    for _ in range(3):
        response = http.get(base + path)
        response.raise_for_status()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = http.get(base + path)
        response.content  # noqa: B018 (the whole body, as a browser waits for it)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return timings


def main() -> None:
    import requests

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--agent", default="bench_agent_0")
    args = parser.parse_args()

    agent = User.objects.get(username=args.agent)
    in_scope = Inquiry.objects.visible_to(agent).count()
    page_cursor, api_cursor = deep_position(agent)
    session_key = signed_in_session(agent)
    pages = [
        ("一覧 検索「受領証明」", "/tickets/?q=受領証明"),
        ("一覧 検索「破損」", "/tickets/?q=破損"),
        ("一覧 検索「なか」", "/tickets/?q=なか"),
        ("コンソール検索「破損」", "/console/search/?q=破損"),
        ("コンソール検索「なか」", "/console/search/?q=なか"),
        ("一覧 1ページ目", "/tickets/"),
        (f"一覧 {DEEP_ROWS:,}件目から（カーソル）", f"/tickets/?after={page_cursor}"),
        ("一覧 ビュー「未割当」", "/tickets/?view=unassigned"),
        ("一覧 ビュー「期限超過」", "/tickets/?view=overdue"),
        ("一覧 ビュー「返答待ち」", "/tickets/?view=waiting"),
        ("一覧 最終更新の古い順", "/tickets/?sort=last_activity_at"),
        ("一覧 期限の近い順（未完了）", "/tickets/?status=open&sort=due"),
        ("API 一覧（すべての状態）", "/api/tickets/?status=all"),
        ("API 検索「破損」", "/api/tickets/?status=all&q=破損"),
        (
            f"API {DEEP_ROWS:,}件目から（カーソル）",
            "/api/tickets/?" + urlencode({"status": "all", "cursor": api_cursor}),
        ),
    ]
    print(f"{Inquiry.objects.count():,} tickets; {agent.username}: {in_scope:,} in scope")
    print(f"load average at start: {load_average()}")
    print(f"{'page':44} {'p50 ms':>8} {'p95 ms':>8}")
    ok = True
    try:
        with asgi_server() as base, requests.Session() as http:
            http.cookies.set("sessionid", session_key)
            for label, path in pages:
                timings = measure(http, base, path, args.runs)
                p95 = percentile(timings, 95)
                met = p95 <= TARGET_P95_MS
                ok &= met
                print(
                    f"{label:44} {statistics.median(timings):8.1f} {p95:8.1f}"
                    f"  {'OK' if met else 'NG'}",
                    flush=True,
                )
    finally:
        from django.contrib.sessions.models import Session

        Session.objects.filter(session_key=session_key).delete()
    print(f"load average at end: {load_average()}")
    print(f"target p95 ≤ {TARGET_P95_MS:.0f} ms: {'met' if ok else 'NOT met'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
