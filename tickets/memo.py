"""Reading slow-changing rows once per batch instead of once per ticket.

Mail intake opens hundreds of inquiries in a row for the same municipality; each needs the
municipality's queue, the category rows, its triage rules and mail settings. Inside
``reusing_lookups()`` those reads are remembered for the rest of the block (one batch, a few
seconds at most); outside it every call reads the database as usual, so interactive writes
always see the current rows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_memo: ContextVar[dict | None] = ContextVar("tickets_lookup_memo", default=None)


@contextmanager
def reusing_lookups() -> Iterator[None]:
    if _memo.get() is not None:  # nested: the outer block's memo is kept
        yield
        return
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def remembered(key: Hashable, load: Callable[[], T]) -> T:
    """``load()``, remembered under ``key`` while inside ``reusing_lookups()``."""
    memo = _memo.get()
    if memo is None:
        return load()
    if key not in memo:
        memo[key] = load()
    return memo[key]
