"""What tests need to start real servers beside them: a free loopback port, and the test
database's URL for a subprocess (live server, Celery worker, uvicorn)."""

from __future__ import annotations

import socket
from urllib.parse import quote


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(db: dict, *, host: str | None = None, port: int | None = None) -> str:
    """``db`` is a Django settings dict; ``host``/``port`` point the URL at another server."""
    user = quote(db.get("USER") or "")
    password = quote(db.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return (
        f"postgres://{auth}{host or db.get('HOST') or '127.0.0.1'}:"
        f"{port or db.get('PORT') or 5432}/{db['NAME']}"
    )
