"""Inquiries: our side tables on django-helpdesk's Ticket and FollowUp.

helpdesk stores the ticket (title, description, status, assignee) and its follow-ups; what the
call center needs to filter on (municipality, channel, category, severity, linked records) lives
here in real, indexed columns. ``tickets.services`` is the only writer of all of it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from helpdesk.models import FollowUp, Ticket

from crm.access import MunicipalityScopedQuerySet, visible_municipality_ids
from crm.models import Donor, Municipality, Provider
from donations_sync.models import Donation, Shipment


class Channel(models.TextChoices):
    PHONE = "phone", "電話"
    EMAIL = "email", "メール"
    FAX = "fax", "FAX"
    LETTER = "letter", "郵便"
    WEB_FORM = "web_form", "Webフォーム"
    PORTAL_REVIEW = "portal_review", "ポータルの口コミ"
    IN_PERSON = "in_person", "窓口"


class RequesterType(models.TextChoices):
    DONOR = "donor", "寄附者"
    PROSPECTIVE_DONOR = "prospective_donor", "寄附検討者"
    PROVIDER = "provider", "返礼品提供事業者"
    CARRIER = "carrier", "配送業者"
    CITY = "city", "自治体"
    OTHER = "other", "その他"


class Severity(models.TextChoices):
    LOW = "low", "低"
    NORMAL = "normal", "通常"
    HIGH = "high", "高"
    URGENT = "urgent", "緊急"


# Severities that call for escalation to the city; kept as data so rules can query them.
ESCALATION_SEVERITIES = (Severity.HIGH, Severity.URGENT)

# helpdesk's ticket priority (1 = highest) mirrors our severity, so its own ordering agrees.
SEVERITY_PRIORITY = {
    Severity.URGENT: 1,
    Severity.HIGH: 2,
    Severity.NORMAL: 3,
    Severity.LOW: 4,
}


class Status(models.IntegerChoices):
    """helpdesk's ticket statuses (same numbers), with the words our screens use."""

    OPEN = Ticket.OPEN_STATUS, "未解決"
    REOPENED = Ticket.REOPENED_STATUS, "再開"
    # Someone is working on it (a 定型文 such as 受領証明書の再発行を受付 sets it): still open.
    # helpdesk knows nothing of it; its screens are not used (README, django-helpdesk).
    IN_PROGRESS = 6, "対応中"
    RESOLVED = Ticket.RESOLVED_STATUS, "解決済"
    CLOSED = Ticket.CLOSED_STATUS, "完了"
    DUPLICATE = Ticket.DUPLICATE_STATUS, "重複"


OPEN_STATUSES = (Status.OPEN, Status.REOPENED, Status.IN_PROGRESS)


class Category(models.Model):
    """The managed inquiry taxonomy (seeded by migration; edited by operator admins)."""

    code = models.SlugField("コード", max_length=40, unique=True)
    name = models.CharField("分類名", max_length=60)
    sort_order = models.PositiveSmallIntegerField("表示順", default=0)
    active = models.BooleanField("有効", default=True)

    class Meta:
        verbose_name = verbose_name_plural = "問合せ分類"
        ordering = ["sort_order", "code"]

    def __str__(self) -> str:
        return self.name


class MunicipalityQueue(models.Model):
    """Which helpdesk Queue holds a municipality's tickets (one each, created with it)."""

    municipality = models.OneToOneField(
        Municipality, on_delete=models.CASCADE, related_name="ticket_queue"
    )
    queue = models.OneToOneField(
        "helpdesk.Queue", on_delete=models.PROTECT, related_name="municipality_link"
    )

    class Meta:
        verbose_name = verbose_name_plural = "自治体キュー"

    def __str__(self) -> str:
        return f"{self.municipality} → {self.queue.slug}"


class Inquiry(models.Model):
    """One ticket (問合せ) as the call center sees it; ``pk`` is the helpdesk ticket id."""

    ticket = models.OneToOneField(
        Ticket, on_delete=models.CASCADE, primary_key=True, related_name="inquiry"
    )
    municipality = models.ForeignKey(
        Municipality, on_delete=models.PROTECT, related_name="inquiries", verbose_name="自治体"
    )
    channel = models.CharField("受付経路", max_length=16, choices=Channel.choices)
    requester_type = models.CharField(
        "問合せ者", max_length=20, choices=RequesterType.choices, default=RequesterType.DONOR
    )
    # The name the requester gave (a mail's From display name); the address is helpdesk's
    # Ticket.submitter_email.
    requester_name = models.CharField("問合せ者名", max_length=200, blank=True, default="")
    category = models.ForeignKey(
        Category,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="inquiries",
        verbose_name="分類",
    )
    severity = models.CharField(
        "重要度", max_length=8, choices=Severity.choices, default=Severity.NORMAL
    )
    # Mirrors helpdesk's Ticket.status (written together by the services) so that queue
    # lists filter and sort on one indexed table.
    status = models.PositiveSmallIntegerField("状態", choices=Status.choices, default=Status.OPEN)
    # Mirrors helpdesk's Ticket.assigned_to, for the same reason as ``status``.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_inquiries",
        db_index=False,
        verbose_name="担当者",
    )
    created_at = models.DateTimeField("受付日時")
    last_activity_at = models.DateTimeField("最終更新")
    first_response_at = models.DateTimeField("初回回答日時", null=True, blank=True)
    resolved_at = models.DateTimeField("解決日時", null=True, blank=True)
    donor = models.ForeignKey(
        Donor, null=True, blank=True, on_delete=models.PROTECT, related_name="inquiries"
    )
    donations = models.ManyToManyField(Donation, blank=True, related_name="inquiries")
    shipments = models.ManyToManyField(Shipment, blank=True, related_name="inquiries")
    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.PROTECT, related_name="inquiries"
    )
    # Service-level due times, in the municipality's business hours (see SlaTarget); computed
    # by the telephony layer, which owns the calendars, when the inquiry is opened or its
    # category changes. Null when no target applies.
    first_response_due = models.DateTimeField("初回回答期限", null=True, blank=True)
    resolution_due = models.DateTimeField("解決期限", null=True, blank=True)
    # True after our public reply until the requester writes again: 「寄附者の返答待ち」.
    awaiting_requester = models.BooleanField("問合せ者の返答待ち", default=False)
    # Normalized text for search (see tickets.search): everything a city official may read,
    # and separately what only operator staff may read (operator-only notes).
    search_text = models.TextField(blank=True, default="", editable=False)
    search_text_internal = models.TextField(blank=True, default="", editable=False)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "問合せ"
        ordering = ["-created_at"]
        indexes = [
            # The agent's queue: open tickets of some municipalities, newest first.
            models.Index(
                fields=["municipality", "-created_at"],
                condition=models.Q(status__in=list(OPEN_STATUSES)),
                name="inquiry_open_muni_recent",
            ),
            models.Index(fields=["municipality", "-created_at"], name="inquiry_muni_recent"),
            # Across several municipalities the newest rows are found by walking these in
            # order and filtering, which beats gathering and sorting every match.
            models.Index(
                fields=["-created_at"],
                condition=models.Q(status__in=list(OPEN_STATUSES)),
                name="inquiry_open_recent",
            ),
            models.Index(fields=["-created_at"], name="inquiry_recent"),
            # "My open tickets", and the console's per-municipality counts from the index alone.
            models.Index(
                fields=["assigned_to", "-last_activity_at"],
                condition=models.Q(status__in=list(OPEN_STATUSES)),
                name="inquiry_open_assignee",
            ),
            models.Index(
                fields=["municipality"],
                # ticket is the primary key: Count("pk") reads it, so keep it in the index too.
                include=["severity", "assigned_to", "ticket"],
                condition=models.Q(status__in=list(OPEN_STATUSES)),
                name="inquiry_open_counts",
            ),
            models.Index(fields=["-last_activity_at"], name="inquiry_recent_activity"),
            # Escalation work looks for open high/urgent tickets.
            models.Index(
                fields=["severity", "municipality"],
                condition=models.Q(severity__in=["high", "urgent"], status__in=list(OPEN_STATUSES)),
                name="inquiry_open_severe",
            ),
            models.Index(fields=["donor", "-created_at"], name="inquiry_donor_recent"),
            models.Index(fields=["category", "municipality"], name="inquiry_category_muni"),
            # 期限超過 and the due-time sort walk the open tickets' due times in order.
            models.Index(
                fields=["resolution_due"],
                condition=models.Q(status__in=list(OPEN_STATUSES)),
                name="inquiry_open_resolution_due",
            ),
            models.Index(
                fields=["first_response_due"],
                condition=models.Q(status__in=list(OPEN_STATUSES), first_response_at__isnull=True),
                name="inquiry_open_first_due",
            ),
            models.Index(
                fields=["-created_at"],
                condition=models.Q(status__in=list(OPEN_STATUSES), assigned_to__isnull=True),
                name="inquiry_open_unassigned",
            ),
            models.Index(
                fields=["-created_at"],
                condition=models.Q(status__in=list(OPEN_STATUSES), awaiting_requester=True),
                name="inquiry_open_waiting",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.ticket.title}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def requester_display(self) -> str:
        """髙﨑 花子 <hanako@example.jp>, or whichever of the two is known."""
        address = self.ticket.submitter_email or ""
        if self.requester_name and address:
            return f"{self.requester_name} <{address}>"
        return self.requester_name or address

    @property
    def sla_due(self) -> Any:
        """The due time that runs now: the first reply's until it is sent, then resolution's."""
        if not self.is_open:
            return None
        if self.first_response_at is None and self.first_response_due is not None:
            return self.first_response_due
        return self.resolution_due

    @property
    def sla_due_label(self) -> str:
        if not self.is_open:
            return ""
        if self.first_response_at is None and self.first_response_due is not None:
            return "初回回答"
        return "解決" if self.resolution_due is not None else ""

    @property
    def is_escalation_severity(self) -> bool:
        return self.severity in ESCALATION_SEVERITIES

    def followups_visible_to(self, user: Any) -> models.QuerySet[FollowUp]:
        """This ticket's follow-ups the user may read: city officials never see operator-only notes."""
        if self.municipality_id not in visible_municipality_ids(user):
            return FollowUp.objects.none()
        qs = FollowUp.objects.filter(ticket_id=self.pk).select_related("user", "event")
        if not user.is_operator_staff:
            qs = qs.filter(event__operator_only=False)
        return qs.order_by("date", "id")


class InquiryEvent(models.Model):
    """What a helpdesk FollowUp is in our timeline, and who may read it.

    helpdesk's ``FollowUp.public`` means "visible to the requester". ``operator_only`` is
    stricter: such rows (internal notes marked so) are hidden from city officials as well.
    """

    class Kind(models.TextChoices):
        OPENED = "opened", "受付"
        REPLY = "reply", "返信"
        NOTE = "note", "内部メモ"
        CUSTOMER_MESSAGE = "customer_message", "問合せ者からの連絡"
        STATUS = "status", "状態変更"
        CATEGORY = "category", "分類変更"
        SEVERITY = "severity", "重要度変更"
        ASSIGN = "assign", "担当者変更"
        LINK = "link", "関連付け"
        UNLINK = "unlink", "関連付け解除"
        MERGE = "merge", "統合"
        TITLE = "title", "件名変更"
        ESCALATION = "escalation", "市へ報告"
        CITY_INSTRUCTION = "city_instruction", "市の指示"
        RESHIPMENT = "reshipment", "再送"

    followup = models.OneToOneField(
        FollowUp, on_delete=models.CASCADE, primary_key=True, related_name="event"
    )
    inquiry = models.ForeignKey(Inquiry, on_delete=models.CASCADE, related_name="events")
    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField("種別", max_length=20, choices=Kind.choices)
    operator_only = models.BooleanField("運営者のみ", default=False)
    channel = models.CharField("経路", max_length=16, choices=Channel.choices, blank=True)
    sender = models.CharField("差出人", max_length=254, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    at = models.DateTimeField("日時")

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "問合せ履歴"
        ordering = ["at", "followup_id"]
        indexes = [
            models.Index(fields=["inquiry", "operator_only", "at"], name="event_inquiry_timeline"),
            models.Index(fields=["kind", "at"], name="event_kind_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.inquiry_id}"


class SlaTarget(models.Model):
    """First-response and resolution targets for one municipality, in business minutes of its
    calendar; a row without category is the municipality's default, a category's row wins."""

    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="sla_targets", verbose_name="自治体"
    )
    category = models.ForeignKey(
        Category,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="sla_targets",
        verbose_name="分類",
    )
    first_response_minutes = models.PositiveIntegerField("初回回答（営業時間・分）")
    resolution_minutes = models.PositiveIntegerField("解決（営業時間・分）")

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "対応期限の目標"
        ordering = ["municipality", "category__sort_order"]
        constraints = [
            models.UniqueConstraint(
                fields=["municipality", "category"],
                name="slatarget_unique",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.municipality} {self.category or '既定'}"


class SavedView(models.Model):
    """A user's own named filter set for the ticket list. It holds parameters only: the list
    applies them to what the user may see, so a saved view never widens anyone's scope."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_ticket_views"
    )
    name = models.CharField("名前", max_length=60)
    query = models.CharField("条件", max_length=1000)
    created_at = models.DateTimeField("作成日時", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "保存した一覧"
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="savedview_user_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Draft(models.Model):
    """What an agent has typed in a ticket's composer and not sent yet: one per ticket and user,
    kept on the server so a reload, a status change or another browser finds it again."""

    inquiry = models.ForeignKey(Inquiry, on_delete=models.CASCADE, related_name="drafts")
    municipality = models.ForeignKey(Municipality, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField("種類", max_length=8, default="note")
    body = models.TextField("本文", blank=True)
    share_with_city = models.BooleanField("市にも見せる", default=False)
    updated_at = models.DateTimeField("保存日時")

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "下書き"
        constraints = [
            models.UniqueConstraint(fields=["inquiry", "user"], name="draft_one_per_ticket_user")
        ]

    def __str__(self) -> str:
        return f"下書き #{self.inquiry_id} {self.user_id}"


class Mention(models.Model):
    """@username in an internal note: the named colleague is told on their console."""

    inquiry = models.ForeignKey(Inquiry, on_delete=models.CASCADE, related_name="mentions")
    municipality = models.ForeignKey(Municipality, on_delete=models.CASCADE, related_name="+")
    followup = models.ForeignKey(FollowUp, on_delete=models.CASCADE, related_name="mentions")
    mentioned = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mentions"
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True
    )
    at = models.DateTimeField("日時")
    read_at = models.DateTimeField("既読日時", null=True, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "メンション"
        ordering = ["-at"]
        indexes = [models.Index(fields=["mentioned", "-at"], name="mention_user_recent")]
        constraints = [
            models.UniqueConstraint(
                fields=["followup", "mentioned"], name="mention_once_per_note_user"
            )
        ]

    def __str__(self) -> str:
        return f"@{self.mentioned_id} #{self.inquiry_id}"
