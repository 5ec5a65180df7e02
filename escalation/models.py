"""City escalation: rules per municipality, escalations of tickets to the city, every notification
attempt with its delivery status, and the city's instructions.

The clocks live in these rows (``Escalation.next_action_at``, ``EscalationNotification.next_try_at``)
and are advanced by Celery beat (``escalation.tasks.escalations_tick``), so a restart of any
process loses nothing: the next tick finds what is due.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from crm.access import MunicipalityScopedQuerySet
from crm.models import CityContact, Municipality


class Kind(models.TextChoices):
    DAMAGED_GIFT = "damaged_gift", "返礼品の破損・傷み"
    NON_DELIVERY = "non_delivery", "返礼品の未着（繰り返し）"
    RESIDENT_GIFT = "resident_gift", "住民への返礼品送付"
    MEDIA_LEGAL = "media_legal", "報道・法的措置の示唆"
    PERSONAL_DATA = "personal_data", "個人情報の事故"
    PORTAL_REVIEW = "portal_review", "対応が必要な口コミ"
    CLUSTER = "cluster", "苦情の集中"
    QUESTION = "question", "市への照会（回答依頼）"
    OTHER = "other", "その他の重要案件"


class EscalationRule(models.Model):
    """Which tickets of a municipality must be reported to it, to whom and how fast."""

    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="escalation_rules"
    )
    name = models.CharField("ルール名", max_length=100)
    kind = models.CharField("種別", max_length=20, choices=Kind.choices, default=Kind.OTHER)
    active = models.BooleanField("有効", default=True)
    # Empty lists match any value; a rule needs at least one of categories/severities/channels.
    categories = models.ManyToManyField(
        "tickets.Category", blank=True, related_name="+", verbose_name="分類"
    )
    severities = models.JSONField("重要度", default=list, blank=True)
    channels = models.JSONField("受付経路", default=list, blank=True)
    on_open = models.BooleanField("受付時", default=True)
    on_reclassify = models.BooleanField("分類・重要度の変更時", default=True)
    on_message = models.BooleanField("新しい連絡の受信時", default=False)
    # How many of the city's contacts (in escalation_order) are tried: 1 primary, 2 +deputy …
    contacts_to_notify = models.PositiveSmallIntegerField("連絡先の数", default=3)
    next_contact_minutes = models.PositiveIntegerField("次の連絡先までの時間（分）", default=30)
    business_hours = models.BooleanField("開庁時間で数える", default=True)
    # Wall-clock limit from first awareness (personal-data incidents: 60 minutes).
    deadline_minutes = models.PositiveIntegerField("報告期限（分）", null=True, blank=True)
    urgent = models.BooleanField("緊急（SMSも送る）", default=False)
    voice_call = models.BooleanField("自動音声電話もかける", default=False)
    notify_provider = models.BooleanField("返礼品提供事業者にもメール", default=False)
    # Complaint clusters (kind=cluster): count in the window vs. the usual rate before it.
    cluster_window_days = models.PositiveSmallIntegerField("集計期間（日）", default=7)
    cluster_min_count = models.PositiveSmallIntegerField("最小件数", default=5)
    cluster_factor = models.DecimalField(
        "通常の何倍で検知", max_digits=4, decimal_places=1, default=3
    )
    cluster_baseline_windows = models.PositiveSmallIntegerField("比較する過去の期間数", default=8)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "エスカレーションルール"
        ordering = ["municipality", "name"]
        indexes = [models.Index(fields=["municipality", "active"], name="escrule_muni_active")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_wall_clock(self) -> bool:
        return self.kind == Kind.PERSONAL_DATA or not self.business_hours


class Escalation(models.Model):
    """One report to the city, from opening to the agreed response being done."""

    class Status(models.TextChoices):
        OPEN = "open", "確認待ち"
        ACKNOWLEDGED = "acknowledged", "確認済"
        CLOSED = "closed", "完了"

    class Source(models.TextChoices):
        RULE_OPEN = "rule_open", "ルール（受付時）"
        RULE_RECLASSIFY = "rule_reclassify", "ルール（分類・重要度の変更）"
        RULE_MESSAGE = "rule_message", "ルール（新しい連絡）"
        MANUAL = "manual", "市へ報告"
        QUESTION = "question", "市への照会"
        CALL = "call", "市へ取次（電話）"
        CLUSTER = "cluster", "苦情の集中"

    municipality = models.ForeignKey(
        Municipality, on_delete=models.PROTECT, related_name="escalations", verbose_name="自治体"
    )
    inquiry = models.ForeignKey(
        "tickets.Inquiry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="escalations",
        verbose_name="問合せ",
    )
    # A cluster names every ticket it counted.
    related_inquiries = models.ManyToManyField(
        "tickets.Inquiry", blank=True, related_name="+", verbose_name="関連する問合せ"
    )
    rule = models.ForeignKey(
        EscalationRule,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="escalations",
        verbose_name="ルール",
    )
    kind = models.CharField("種別", max_length=20, choices=Kind.choices)
    source = models.CharField("契機", max_length=20, choices=Source.choices)
    status = models.CharField("状態", max_length=15, choices=Status.choices, default=Status.OPEN)
    urgent = models.BooleanField("緊急", default=False)
    title = models.CharField("件名", max_length=200)
    reason = models.TextField("報告理由", blank=True)
    proposed_response = models.TextField("対応案", blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField("報告日時")
    # First awareness of the incident (personal data: the 60 minutes run from here).
    aware_at = models.DateTimeField("覚知日時")
    deadline_at = models.DateTimeField("報告期限", null=True, blank=True)
    deadline_passed_at = models.DateTimeField("期限超過の記録", null=True, blank=True)
    first_notified_at = models.DateTimeField("初回通知日時", null=True, blank=True)
    acknowledged_at = models.DateTimeField("確認日時", null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_via = models.CharField("確認方法", max_length=10, blank=True)
    closed_at = models.DateTimeField("完了日時", null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    outcome = models.TextField("対応結果", blank=True)
    # The contact chain: step 0 is the first contact; each due step notifies the next one.
    step = models.PositiveIntegerField("連絡段階", default=0)
    next_contact_at = models.DateTimeField("次の連絡予定", null=True, blank=True)
    # The earliest of next_contact_at and an unpassed deadline: what the beat scan looks at.
    next_action_at = models.DateTimeField(null=True, blank=True)
    # Complaint clusters: what was counted (e.g. "provider:12:2026-11-23"); one escalation each.
    cluster_key = models.CharField(max_length=100, null=True, blank=True, unique=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "市への報告"
        ordering = ["-opened_at", "-id"]
        indexes = [
            # The beat scan: open escalations whose next step is due.
            models.Index(
                fields=["next_action_at"],
                condition=models.Q(status="open"),
                name="escalation_due",
            ),
            models.Index(fields=["municipality", "-opened_at"], name="escalation_muni_recent"),
            models.Index(fields=["inquiry", "status"], name="escalation_inquiry"),
        ]
        constraints = [
            # One open escalation per ticket and rule: a rule matching again adds nothing.
            models.UniqueConstraint(
                fields=["inquiry", "rule"],
                condition=~models.Q(status="closed") & models.Q(rule__isnull=False),
                name="escalation_one_open_per_rule",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.CLOSED

    def waited(self, now: datetime.datetime | None = None) -> datetime.timedelta:
        end = self.acknowledged_at or now or timezone.now()
        return end - self.opened_at

    def seconds_left(self, now: datetime.datetime | None = None) -> int | None:
        if self.deadline_at is None:
            return None
        return int((self.deadline_at - (now or timezone.now())).total_seconds())


class EscalationNotification(models.Model):
    """One attempt to tell someone of an escalation, by one channel, with its delivery status.

    Rows are written with the escalation step that calls for them (unique per step, channel and
    recipient, so a repeated step adds nothing) and sent by a worker that claims the row first:
    a row is sent at most once, and a send whose outcome is unknown is never repeated.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "メール"
        SMS = "sms", "SMS"
        VOICE = "voice", "自動音声電話"

    class Recipient(models.TextChoices):
        CITY = "city", "自治体担当者"
        PROVIDER = "provider", "返礼品提供事業者"
        SECURITY = "security", "情報セキュリティ責任者"

    class Status(models.TextChoices):
        QUEUED = "queued", "送信待ち"
        SENDING = "sending", "送信中"
        RETRYING = "retrying", "再送待ち"
        SENT = "sent", "送信済"
        FAILED = "failed", "送信失敗"
        UNKNOWN = "unknown", "送信結果不明"
        CANCELLED = "cancelled", "取消（確認済・完了）"

    escalation = models.ForeignKey(
        Escalation, on_delete=models.CASCADE, related_name="notifications"
    )
    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="+")
    step = models.PositiveIntegerField("連絡段階")
    recipient = models.CharField(
        "宛先の種別", max_length=10, choices=Recipient.choices, default=Recipient.CITY
    )
    contact = models.ForeignKey(
        CityContact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField("宛先名", max_length=120, blank=True)
    channel = models.CharField("手段", max_length=10, choices=Channel.choices)
    to = models.CharField("宛先", max_length=254)
    status = models.CharField("状態", max_length=10, choices=Status.choices, default=Status.QUEUED)
    tries = models.PositiveSmallIntegerField("試行回数", default=0)
    next_try_at = models.DateTimeField("次の試行", null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    provider_sid = models.CharField("Twilio SID / Message-ID", max_length=200, blank=True)
    provider_status = models.CharField("配信状況", max_length=30, blank=True)
    last_error = models.TextField("エラー", blank=True)
    created_at = models.DateTimeField("作成日時", default=timezone.now)
    sent_at = models.DateTimeField("送信日時", null=True, blank=True)
    acknowledged_at = models.DateTimeField("電話で確認", null=True, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "市への通知"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["escalation", "step", "channel", "to"], name="notification_once_per_step"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_try_at"],
                condition=models.Q(status__in=["queued", "retrying", "sending"]),
                name="notification_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.to} {self.get_status_display()}"


class CityInstruction(models.Model):
    """市の指示: what the city asks the call center to do, written by a city official."""

    escalation = models.ForeignKey(
        Escalation, on_delete=models.CASCADE, related_name="instructions"
    )
    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField("指示内容")
    created_at = models.DateTimeField("日時", default=timezone.now)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "市の指示"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.body[:40]
