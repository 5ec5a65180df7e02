"""Drive the project's ASGI application as a server would, keeping every message it sends.

Channels' HttpCommunicator joins the body for us; streaming tests need the separate
``http.response.body`` messages, and to act while the response is still being sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from config.asgi import application

Message = dict[str, Any]


async def asgi_get(
    path: str,
    *,
    cookie: str,
    query_string: str = "",
    on_body: Callable[[Message, list[Message]], Awaitable[None]] | None = None,
    timeout: float = 30,
) -> list[Message]:
    """GET ``path``; ``on_body`` is awaited for each body message as it is sent."""
    request_sent = False
    finished = asyncio.Event()
    messages: list[Message] = []

    async def receive() -> Message:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()  # the client stays connected until the response is complete
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and on_body is not None:
            await on_body(message, messages)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    try:
        await asyncio.wait_for(application(scope, receive, send), timeout=timeout)
    finally:
        finished.set()
    return messages


def body_messages(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m["type"] == "http.response.body"]
