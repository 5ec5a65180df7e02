"""Work that must happen after a commit, recorded in the same transaction as its cause.

The row is the promise; the Celery message only says "now would be a good time". A broker outage
or a worker killed mid-task delays the work, the sweep (jobs.tasks.jobs_sweep) finds it again.
"""

from __future__ import annotations

from django.db import models


class PendingJob(models.Model):
    # Dotted path of a function taking keyword arguments (JSON values); it must be idempotent.
    target = models.CharField("処理", max_length=200)
    kwargs = models.JSONField("引数", default=dict)
    # At most one open job per key (e.g. "voicemail-ticket:42"): causes that repeat add nothing.
    key = models.CharField("キー", max_length=200, unique=True)
    created_at = models.DateTimeField("登録日時", auto_now_add=True)
    # Not before this time: set on each dispatch (a visibility window) and after each failure
    # (backoff), so the sweep leaves alone what a worker is running or just failed.
    run_after = models.DateTimeField("次回実行", db_index=True)
    attempts = models.PositiveIntegerField("試行回数", default=0)
    last_error = models.TextField("最後のエラー", blank=True)
    # Which worker process ran it last ("host:pid"): where to look when a job hangs.
    ran_by = models.CharField("実行プロセス", max_length=200, blank=True)
    done_at = models.DateTimeField("完了日時", null=True, blank=True)
    failed_at = models.DateTimeField("断念日時", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "バックグラウンド処理"
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["run_after"],
                condition=models.Q(done_at__isnull=True, failed_at__isnull=True),
                name="pendingjob_open",
            )
        ]

    def __str__(self) -> str:
        return self.key
