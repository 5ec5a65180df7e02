"""Hand-over at contract end: exports, verified deletions, and retention policies.

The rows of this module outlive the municipality they are about: they keep its code and name
as text, and their link to it is cleared (SET NULL) when the municipality itself is deleted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from crm.models import Municipality


class RunStatus(models.TextChoices):
    QUEUED = "queued", "待機中"
    RUNNING = "running", "実行中"
    DONE = "done", "完了"
    FAILED = "failed", "失敗"


class HandoverExport(models.Model):
    """One export of everything of a municipality: a zip written to HANDOVER_ROOT."""

    municipality = models.ForeignKey(
        Municipality, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name="自治体"
    )
    municipality_code = models.CharField("団体コード", max_length=6)
    municipality_name = models.CharField("自治体名", max_length=40)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField("依頼日時", auto_now_add=True)
    status = models.CharField(
        "状態", max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED
    )
    started_at = models.DateTimeField("開始日時", null=True, blank=True)
    finished_at = models.DateTimeField("終了日時", null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    tables_total = models.PositiveIntegerField(default=0)
    tables_done = models.PositiveIntegerField(default=0)
    current_table = models.CharField(max_length=100, blank=True)
    rows_written = models.PositiveBigIntegerField("出力行数", default=0)
    row_counts = models.JSONField("表ごとの行数", default=dict, blank=True)
    file_name = models.CharField("ファイル名", max_length=200, blank=True)
    file_size = models.PositiveBigIntegerField("サイズ", null=True, blank=True)
    sha256 = models.CharField("SHA-256", max_length=64, blank=True)
    # The file is removed with the municipality's data; its checksum stays for the certificate.
    file_removed_at = models.DateTimeField("ファイル削除日時", null=True, blank=True)
    error = models.TextField("エラー", blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "引継ぎデータ出力"
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"{self.municipality_code} {self.requested_at:%Y-%m-%d %H:%M}"

    @property
    def is_done(self) -> bool:
        return self.status == RunStatus.DONE

    @property
    def percent(self) -> int:
        if self.status == RunStatus.DONE:
            return 100
        return int(100 * self.tables_done / self.tables_total) if self.tables_total else 0


class HandoverDeletion(models.Model):
    """The verified deletion of everything of a municipality, in short resumable batches."""

    class Stage(models.TextChoices):
        ROWS = "rows", "データベースの行"
        FILES = "files", "ファイル"
        REDIS = "redis", "キャッシュ（Redis）"
        VERIFY = "verify", "残存確認"
        CERTIFICATE = "certificate", "削除証明書"
        DONE = "done", "完了"

    municipality = models.ForeignKey(
        Municipality, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name="自治体"
    )
    municipality_code = models.CharField("団体コード", max_length=6)
    municipality_name = models.CharField("自治体名", max_length=40)
    # The hand-over this deletion follows; none only with an audited override reason.
    export = models.ForeignKey(
        HandoverExport, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    override_reason = models.TextField("出力なしで削除する理由", blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_name = models.CharField("実施者", max_length=150)
    requested_at = models.DateTimeField("依頼日時", auto_now_add=True)
    status = models.CharField(
        "状態", max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED
    )
    stage = models.CharField("段階", max_length=12, choices=Stage.choices, default=Stage.ROWS)
    started_at = models.DateTimeField("開始日時", null=True, blank=True)
    finished_at = models.DateTimeField("終了日時", null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Snapshot taken before the first batch (helpdesk queue ids, rows per table), so a resumed
    # run finds what its lookups go through even after those rows are gone.
    plan = models.JSONField(default=dict, blank=True)
    deleted_counts = models.JSONField("表ごとの削除件数", default=dict, blank=True)
    # The longest batch transaction, to show that other municipalities were never held up long.
    longest_batch_ms = models.PositiveIntegerField("最長のバッチ（ミリ秒）", default=0)
    files_removed = models.PositiveIntegerField("削除したファイル数", default=0)
    redis_keys_removed = models.PositiveIntegerField("削除したキー数", default=0)
    audit_rows_anonymised = models.PositiveIntegerField("匿名化した監査ログ", default=0)
    accounts_deactivated = models.PositiveIntegerField("無効化した自治体職員アカウント", default=0)
    verification = models.JSONField("残存確認", default=dict, blank=True)
    certificate_name = models.CharField(max_length=200, blank=True)
    error = models.TextField("エラー", blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "引継ぎ後のデータ削除"
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"{self.municipality_code} {self.requested_at:%Y-%m-%d %H:%M}"

    @property
    def rows_deleted(self) -> int:
        return sum(self.deleted_counts.values())

    @property
    def rows_planned(self) -> int:
        return sum(self.plan.get("counts", {}).values())

    @property
    def percent(self) -> int:
        if self.status == RunStatus.DONE:
            return 100
        planned = self.rows_planned
        return min(99, int(100 * self.rows_deleted / planned)) if planned else 0


class RetentionPolicy(models.Model):
    """How long a municipality's material is kept; the row without a municipality is the default.

    Empty = kept (no purge). A municipality's own row wins field by field over the default.
    """

    municipality = models.OneToOneField(
        Municipality,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="retention_policy",
        verbose_name="自治体",
    )
    recordings_days = models.PositiveIntegerField("通話録音の保存日数", null=True, blank=True)
    raw_mail_days = models.PositiveIntegerField("受信メール原文の保存日数", null=True, blank=True)
    attachments_days = models.PositiveIntegerField("添付ファイルの保存日数", null=True, blank=True)
    closed_inquiries_years = models.PositiveIntegerField(
        "完了した問合せの保存年数", null=True, blank=True
    )
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "保存期間"
        constraints = [
            models.UniqueConstraint(
                fields=["municipality"],
                name="retention_one_default",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.municipality or '既定'} 保存期間"
