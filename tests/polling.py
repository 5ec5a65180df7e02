"""Waiting for a condition instead of for a fixed time: fast when the system is quick, patient
when the machine is busy, and a clear failure when the condition never comes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float = 5, every: float = 0.05
) -> T:
    """Calls ``probe`` until ``done`` holds for its value, and returns that value; after
    ``timeout`` seconds returns the last value, for the caller's assertion to show."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value) or time.monotonic() >= deadline:
            return value
        time.sleep(every)


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout: float = 5,
    every: float = 0.05,
) -> T:
    """``wait_until`` for coroutines."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if done(value) or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(every)
