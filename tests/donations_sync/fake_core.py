"""A local stand-in for the donation & fulfillment core's HTTP API, with its faults.

``GET /changes?cursor=&limit=`` serves ``changes`` from the offset the cursor names (the cursor
is the offset as a string), like the real core's API described in the README. Faults are queued
and each is used by one request: an HTTP status (``500``, ``503`` with Retry-After, ``401``),
``timeout`` (answers only after ``sleep`` seconds, past the client's read timeout), ``drop``
(closes the connection without an answer), ``drop-mid`` (sends the headers and half the body,
then closes), ``not-json``, ``hang`` (holds the request until ``release()``). ``POST`` to any
path is answered with what was received (method, path, headers, JSON body): for client tests.

``POST /decisions`` is the outbox's endpoint: the first request with an Idempotency-Key has its
effect (counted in ``effects`` per key) and is answered accepted with a reference (or refused
with ``refuse_reason`` while that is set); the same key again gets the same answer and no second
effect. Faults for it: ``drop-after`` (has its effect, then closes without an answer),
``hang-after`` (has its effect, then holds the answer until ``release()``). ``outage``: while
set to a status (e.g. 503), every request gets it, like a core that is down.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FakeCore:
    def __init__(self, *, token: str = "core-test-token") -> None:
        self.token = token
        self.changes: list[dict[str, Any]] = []
        self.faults: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []
        self.sleep = 2.0
        self.effects: Counter[str] = Counter()
        self.decisions: dict[str, dict[str, Any]] = {}  # key -> the first body received
        self.answers: dict[str, dict[str, Any]] = {}
        self.refuse_reason = ""
        self.outage: int | None = None
        self.record_requests = True
        self.decision_requests = 0
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.hanging = threading.Event()  # set while a "hang" request is held
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes: with Nagle's algorithm the body would wait
            # for the client's delayed ACK (40 ms a request on Linux).
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._serve(self, "GET")

            def do_POST(self) -> None:
                fake._serve(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"

    def start(self) -> FakeCore:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, *faults: str) -> None:
        self.faults.extend(faults)

    def release(self) -> None:
        self._released.set()

    @property
    def change_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/changes")]

    # --- serving ---

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if self.outage is not None:
            self._send(handler, self.outage, {"error": "down"}, {"Retry-After": "60"})
            return
        if self.record_requests:  # off in the benchmark: its tens of thousands of requests
            self.requests.append(
                {
                    "method": method,
                    "path": split.path,
                    "query": query,
                    "headers": dict(handler.headers.items()),
                    "body": body,
                }
            )
        fault = self.faults.popleft() if self.faults else ""
        if fault == "drop":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "timeout":
            time.sleep(self.sleep)
        if fault == "hang":
            self.hanging.set()
            self._released.wait(60)
        if fault.isdigit():
            headers = {"Retry-After": "120"} if fault == "503" else {}
            self._send(handler, int(fault), {"error": f"fault {fault}"}, headers)
            return
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            self._send(handler, 401, {"error": "unauthorized"})
            return
        if method == "POST" and split.path == "/api/v1/decisions":
            self._decide(handler, body, fault)
            return
        if method == "POST":
            answer = {
                "method": method,
                "path": split.path,
                "idempotency_key": handler.headers.get("Idempotency-Key"),
                "json": json.loads(body) if body else None,
            }
            self._send(handler, 201, answer)
            return
        if split.path != "/api/v1/changes":
            self._send(handler, 404, {"error": "not found"})
            return
        offset = int(query.get("cursor") or 0)
        limit = int(query.get("limit") or 100)
        page = self.changes[offset : offset + limit]
        next_offset = offset + len(page)
        answer = {
            "changes": page,
            "next_cursor": str(next_offset),
            "has_more": next_offset < len(self.changes),
        }
        if fault == "not-json":
            raw = b"<html>Bad gateway</html>"
            self._send_raw(handler, 200, raw, "text/html")
            return
        raw = json.dumps(answer, ensure_ascii=False).encode()
        if fault == "drop-mid":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(raw)))
            handler.end_headers()
            handler.wfile.write(raw[: len(raw) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send_raw(handler, 200, raw, "application/json")

    def _decide(self, handler: BaseHTTPRequestHandler, body: bytes, fault: str = "") -> None:
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            self._send(handler, 401, {"error": "unauthorized"})
            return
        key = handler.headers.get("Idempotency-Key") or ""
        if not key:
            self._send(handler, 400, {"error": "Idempotency-Key required"})
            return
        data = json.loads(body)
        with self._lock:
            self.decision_requests += 1
            answer = self.answers.get(key)
            if answer is None:
                self.effects[key] += 1
                self.decisions[key] = data
                if self.refuse_reason:
                    answer = {"status": "refused", "reason": self.refuse_reason}
                else:
                    answer = {"status": "accepted", "reference": f"R-{len(self.answers) + 1}"}
                self.answers[key] = answer
        if fault == "drop-after":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "hang-after":
            self.hanging.set()
            self._released.wait(60)
        self._send(handler, 200, answer)

    @property
    def duplicates(self) -> int:
        """Effects beyond the first for any key: must stay 0."""
        return sum(n - 1 for n in self.effects.values() if n > 1)

    def _send(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        data: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        raw = json.dumps(data, ensure_ascii=False).encode()
        self._send_raw(handler, status, raw, "application/json", headers)

    def _send_raw(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        raw: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(raw)


def change(
    change_id: str,
    kind: str,
    changed_at: str,
    data: dict[str, Any],
    *,
    municipality_code: str = "012033",
) -> dict[str, Any]:
    """One change as the core writes it (see the README)."""
    return {
        "id": change_id,
        "type": kind,
        "municipality_code": municipality_code,
        "changed_at": changed_at,
        "data": data,
    }
