"""Which agents have a phone bar open: one expiring heartbeat per open agent websocket.

Counting connects and disconnects cannot work: a worker process that dies (or a socket the server
never sees close) never runs its disconnect, so a count only grows and the agent stays 在席 with
no tab open. Instead every open socket refreshes its own member of the agent's sorted set
(member: the connection, score: when its heartbeat runs out) while it is open; an agent whose
members have all run out has no tab left, whatever happened to the process that held them.

Kept in Redis (``REDIS_URL``) so every worker process and the Celery beat sweep see the same
heartbeats; without Redis (the single-process demo) in this process's memory.
"""

from __future__ import annotations

import threading
import time
from functools import cache

from django.conf import settings

KEY = "telephony:heartbeats:{}"
# A socket beats every HEARTBEAT_SECONDS; its heartbeat lasts TTL_SECONDS, so two missed beats
# in a row (a stalled event loop, a slow Redis) do not log an agent off.
HEARTBEAT_SECONDS = 10.0
TTL_SECONDS = 30.0

_local: dict[int, dict[str, float]] = {}
_local_lock = threading.Lock()


def interval() -> float:
    return float(getattr(settings, "TELEPHONY_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS))


def ttl() -> float:
    return float(getattr(settings, "TELEPHONY_HEARTBEAT_TTL_SECONDS", TTL_SECONDS))


@cache
def _redis(url: str):  # noqa: ANN202 - redis.Redis, imported only when configured
    import redis

    return redis.Redis.from_url(url)


def beat(user_id: int, connection: str) -> None:
    """This connection of the agent is open (for the next ``ttl()`` seconds)."""
    expires = time.time() + ttl()
    if settings.REDIS_URL:
        client = _redis(settings.REDIS_URL)
        key = KEY.format(user_id)
        with client.pipeline() as pipe:
            pipe.zadd(key, {connection: expires})
            pipe.expire(key, int(ttl()) + 1)
            pipe.execute()
        return
    with _local_lock:
        _local.setdefault(user_id, {})[connection] = expires


def drop(user_id: int, connection: str) -> None:
    """This connection closed."""
    if settings.REDIS_URL:
        _redis(settings.REDIS_URL).zrem(KEY.format(user_id), connection)
        return
    with _local_lock:
        _local.get(user_id, {}).pop(connection, None)


def alive(user_id: int) -> int:
    """How many of the agent's connections have beaten within their lifetime."""
    now = time.time()
    if settings.REDIS_URL:
        client = _redis(settings.REDIS_URL)
        key = KEY.format(user_id)
        with client.pipeline() as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zcard(key)
            return int(pipe.execute()[1])
    with _local_lock:
        members = _local.get(user_id, {})
        for connection in [c for c, expires in members.items() if expires <= now]:
            del members[connection]
        return len(members)
