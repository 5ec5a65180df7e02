"""Celery beat's pull of the core's change feed (CELERY_BEAT_SCHEDULE["core-feed-pull"])."""

from __future__ import annotations

from celery import shared_task

from donations_sync import feed


@shared_task(name="donations_sync.feed_tasks.core_feed_pull", ignore_result=True)
def core_feed_pull() -> dict:
    # No Celery retry: a failed pull records its backoff on the cursor and the next beat run
    # (after the backoff) starts again from the same cursor. A run that finds the cursor locked
    # by another run returns at once.
    result = feed.feed_pull()
    return {
        "pages": result.pages,
        "received": result.received,
        "outcomes": result.outcomes,
        "busy": result.busy,
        "deferred": result.deferred,
        "error": result.error,
    }


@shared_task(name="donations_sync.feed_tasks.core_feed_receipts_prune", ignore_result=True)
def core_feed_receipts_prune() -> int:
    return feed.receipts_prune()
