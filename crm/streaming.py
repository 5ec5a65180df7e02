"""Streaming responses that really stream under ASGI.

Django serves a StreamingHttpResponse over ASGI by iterating it on the event loop. Given a
synchronous iterator it cannot do that, so it reads the whole iterator into a list first (with a
warning) and only then sends the first byte: a large CSV export or a recording arrives all at
once, after the server has held all of it in memory. These helpers give the response an
asynchronous iterator that pulls a few items at a time from the synchronous one in the request's
own thread (thread-sensitive, so database cursors stay on the request's connection).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

from asgiref.sync import sync_to_async

T = TypeVar("T")


async def aiter_in_thread(
    iterable: Iterable[T], *, batch: int = 1, on_close: Callable[[], object] | None = None
) -> AsyncIterator[T]:
    """Items of ``iterable``, ``batch`` at a time fetched in the request's thread.

    ``on_close`` runs (in that thread too) when the iteration ends, fails or the client goes
    away, as does a generator's own ``close()``: upstream connections and cursors are released.
    """
    iterator: Iterator[T] = iter(())

    def start() -> None:
        nonlocal iterator
        iterator = iter(iterable)

    def take() -> list[T]:
        return list(islice(iterator, batch))

    def close() -> None:
        try:
            closer = getattr(iterator, "close", None)
            if closer is not None:
                closer()
        finally:
            if on_close is not None:
                on_close()

    try:
        await sync_to_async(start, thread_sensitive=True)()
        while items := await sync_to_async(take, thread_sensitive=True)():
            for item in items:
                yield item
    finally:
        await sync_to_async(close, thread_sensitive=True)()
