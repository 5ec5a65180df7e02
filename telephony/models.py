"""Calls: per-municipality phone settings and calendars, agents' presence, call records."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models

from crm.access import MunicipalityScopedQuerySet
from crm.models import Municipality


def default_ivr_options() -> dict[str, dict[str, str]]:
    # Keys are the digit pressed; requester_type values are tickets.RequesterType codes.
    return {
        "1": {"label": "寄附をされた方、寄附をご検討中の方", "requester_type": "donor"},
        "2": {"label": "返礼品提供事業者の方", "requester_type": "provider"},
        "3": {"label": "その他のお問合せの方", "requester_type": "other"},
    }


class PhoneSettings(models.Model):
    """How one municipality's lines answer: greeting, menu, hours rules, queue bounds."""

    municipality = models.OneToOneField(
        Municipality, on_delete=models.CASCADE, related_name="phone_settings"
    )
    greeting = models.CharField(
        "応答メッセージ",
        max_length=200,
        blank=True,
        help_text="空欄なら自治体の応答名から作ります。",
    )
    ivr_options = models.JSONField("音声メニュー", default=default_ivr_options)
    hold_message = models.CharField(
        "保留メッセージ",
        max_length=200,
        default="ただいま電話が大変混み合っております。このままお待ちいただくか、しばらくしてからおかけ直しください。",
    )
    max_queue_wait_seconds = models.PositiveIntegerField("最大待ち時間（秒）", default=180)
    ring_timeout_seconds = models.PositiveSmallIntegerField("呼出時間（秒）", default=20)
    open_on_holidays = models.BooleanField("祝日も受付", default=False)
    record_calls = models.BooleanField("通話を録音", default=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "電話設定"

    def __str__(self) -> str:
        return f"{self.municipality} 電話設定"

    def greeting_text(self) -> str:
        return self.greeting or self.municipality.greeting


class WeeklyHours(models.Model):
    """Regular opening hours for one weekday (0 = Monday)."""

    WEEKDAYS = [(0, "月"), (1, "火"), (2, "水"), (3, "木"), (4, "金"), (5, "土"), (6, "日")]

    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="weekly_hours"
    )
    weekday = models.PositiveSmallIntegerField("曜日", choices=WEEKDAYS)
    opens = models.TimeField("開始")
    closes = models.TimeField("終了")

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "受付時間（曜日）"
        ordering = ["municipality", "weekday", "opens"]
        constraints = [
            models.UniqueConstraint(fields=["municipality", "weekday"], name="weeklyhours_unique"),
            models.CheckConstraint(
                condition=models.Q(opens__lt=models.F("closes")), name="weeklyhours_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"


class CalendarException(models.Model):
    """A date range that replaces the weekly rule: closed days, or other hours.

    ``every_year`` ranges compare month and day only (Jan 1–3 closures; a Dec 29–Jan 3 peak that
    spans the new year). An exception also overrides the national-holiday rule.
    """

    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="calendar_exceptions"
    )
    label = models.CharField("名称", max_length=60)
    start_date = models.DateField("開始日")
    end_date = models.DateField("終了日")
    every_year = models.BooleanField("毎年", default=False)
    closed = models.BooleanField("休業", default=False)
    opens = models.TimeField("開始", null=True, blank=True)
    closes = models.TimeField("終了", null=True, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "受付カレンダー例外"
        ordering = ["municipality", "start_date"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(closed=True)
                | models.Q(opens__isnull=False, closes__isnull=False, opens__lt=models.F("closes")),
                name="calendarexception_hours",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    def covers(self, day: datetime.date) -> bool:
        if not self.every_year:
            return self.start_date <= day <= self.end_date
        start = (self.start_date.month, self.start_date.day)
        end = (self.end_date.month, self.end_date.day)
        key = (day.month, day.day)
        if start <= end:
            return start <= key <= end
        return key >= start or key <= end  # wraps over the new year


class AgentPresence(models.Model):
    """An agent's telephony state. One row per agent, written only by telephony.services."""

    class State(models.TextChoices):
        AVAILABLE = "available", "在席"
        RINGING = "ringing", "呼出中"
        ON_CALL = "on_call", "通話中"
        WRAP_UP = "wrap_up", "後処理"
        BREAK = "break", "離席"
        OFFLINE = "offline", "ログオフ"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presence"
    )
    state = models.CharField("状態", max_length=10, choices=State.choices, default=State.OFFLINE)
    since = models.DateTimeField("状態開始")
    # Reached by the browser softphone (<Client>) unless a phone number is set.
    phone_e164 = models.CharField("転送先電話番号(E.164)", max_length=16, blank=True)
    current_call = models.ForeignKey(
        "telephony.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Why the agent stepped away (離席理由), or why a supervisor reset their state.
    reason = models.CharField("理由", max_length=100, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "在席状況"
        indexes = [models.Index(fields=["state", "since"], name="presence_state_since")]

    def __str__(self) -> str:
        return f"{self.user} {self.get_state_display()}"

    @property
    def client_identity(self) -> str:
        return f"agent-{self.user_id}"


class Disposition(models.Model):
    """Wrap-up code (後処理コード) every answered call must be given."""

    code = models.SlugField("コード", max_length=30, unique=True)
    name = models.CharField("名称", max_length=60)
    sort_order = models.PositiveSmallIntegerField("表示順", default=0)
    active = models.BooleanField("有効", default=True)

    class Meta:
        verbose_name = verbose_name_plural = "後処理コード"
        ordering = ["sort_order", "code"]

    def __str__(self) -> str:
        return self.name


class Call(models.Model):
    """One call as the call center saw it, built from Twilio's webhooks and status callbacks."""

    class Direction(models.TextChoices):
        INBOUND = "inbound", "着信"
        OUTBOUND = "outbound", "発信（折り返し）"

    class Status(models.TextChoices):
        OFFERED = "offered", "着信"
        IVR = "ivr", "音声メニュー"
        QUEUED = "queued", "待ち呼"
        RINGING = "ringing", "呼出中"
        IN_PROGRESS = "in_progress", "通話中"
        VOICEMAIL = "voicemail", "留守番電話"
        COMPLETED = "completed", "終了"
        ABANDONED_IVR = "abandoned_ivr", "放棄（音声メニュー）"
        ABANDONED_QUEUE = "abandoned_queue", "放棄（待ち呼）"
        # Hung up on the closed message without leaving one: not an abandon, nobody could answer.
        AFTER_HOURS_HANGUP = "after_hours_hangup", "時間外切断"
        NO_ANSWER = "no_answer", "不応答"
        FAILED = "failed", "失敗"

    ENDED_STATUSES = (
        Status.VOICEMAIL,
        Status.COMPLETED,
        Status.ABANDONED_IVR,
        Status.ABANDONED_QUEUE,
        Status.AFTER_HOURS_HANGUP,
        Status.NO_ANSWER,
        Status.FAILED,
    )

    call_sid = models.CharField("CallSid", max_length=64, unique=True, null=True, blank=True)
    municipality = models.ForeignKey(
        Municipality, on_delete=models.PROTECT, related_name="calls", verbose_name="自治体"
    )
    direction = models.CharField(
        "方向", max_length=10, choices=Direction.choices, default=Direction.INBOUND
    )
    status = models.CharField("状態", max_length=20, choices=Status.choices, default=Status.OFFERED)
    from_raw = models.CharField("発信者番号（受信値）", max_length=40, blank=True)
    from_e164 = models.CharField("発信者番号", max_length=16, blank=True)
    to_e164 = models.CharField("着信番号", max_length=16, blank=True)
    after_hours = models.BooleanField("時間外", default=False)
    ivr_digit = models.CharField("メニュー選択", max_length=2, blank=True)
    requester_type = models.CharField("問合せ者", max_length=20, blank=True)
    offered_at = models.DateTimeField("着信日時")
    routed_at = models.DateTimeField("振分開始", null=True, blank=True)
    answered_at = models.DateTimeField("応答日時", null=True, blank=True)
    ended_at = models.DateTimeField("終了日時", null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="answered_calls",
        verbose_name="応答者",
    )
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="placed_calls",
        verbose_name="発信者",
    )
    queue_seconds = models.PositiveIntegerField("待ち時間・保留（秒）", null=True, blank=True)
    talk_seconds = models.PositiveIntegerField("通話時間（秒）", null=True, blank=True)
    recording_sid = models.CharField("録音SID", max_length=64, blank=True)
    recording_url = models.URLField("録音URL", max_length=300, blank=True)
    recording_seconds = models.PositiveIntegerField("録音時間（秒）", null=True, blank=True)
    voicemail = models.BooleanField("留守番電話", default=False)
    # Donors matched by caller ID within the municipality, kept as the pop showed them.
    matched_donor_ids = models.JSONField("発信者番号で一致した寄附者", default=list, blank=True)
    inquiry = models.ForeignKey(
        "tickets.Inquiry",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="calls",
        verbose_name="問合せ",
    )
    disposition = models.ForeignKey(
        Disposition,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="後処理コード",
    )
    disposition_note = models.TextField("後処理メモ", blank=True)
    wrapped_up_at = models.DateTimeField("後処理完了", null=True, blank=True)
    # Highest Twilio SequenceNumber applied from the call's status callbacks; older ones that
    # arrive late are recorded as events but do not move the state back.
    last_sequence = models.IntegerField(default=-1)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "通話"
        ordering = ["-offered_at"]
        indexes = [
            models.Index(fields=["municipality", "-offered_at"], name="call_muni_recent"),
            models.Index(
                fields=["municipality", "routed_at"],
                condition=models.Q(status="queued"),
                name="call_waiting",
            ),
            models.Index(fields=["answered_by", "-offered_at"], name="call_agent_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.from_e164 or '非通知'} {self.offered_at:%Y-%m-%d %H:%M}"

    @property
    def is_ended(self) -> bool:
        return self.status in self.ENDED_STATUSES


class CallEvent(models.Model):
    """Every webhook we accepted, once per (CallSid, event): the idempotency key and the log."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    call_sid = models.CharField(max_length=64)
    event = models.CharField(max_length=160)
    sequence = models.IntegerField(null=True, blank=True)
    at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    payload = models.JSONField(default=dict)
    # The TwiML we answered: a retried webhook gets the same answer (telephony.services.answer_once).
    response = models.TextField(blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "通話イベント"
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["call_sid", "event"], name="callevent_once"),
        ]

    def __str__(self) -> str:
        return f"{self.call_sid} {self.event}"
