"""Re-shipments (再送・代品手配) requested from tickets, their approvals, and returned mail
(住所不明返送) with the call-backs it needs."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from crm.access import MunicipalityScopedQuerySet
from crm.models import Donor, Municipality
from donations_sync.models import Donation, GiftItem, Shipment
from reshipments.rules import Fault, Reason


class ReshipmentSettings(models.Model):
    """A municipality's own rules for re-shipments (edited by supervisors and operator admins)."""

    municipality = models.OneToOneField(
        Municipality, on_delete=models.CASCADE, related_name="reshipment_settings"
    )
    # Some cities approve every re-shipment themselves (they pay for the billable ones).
    city_approval_required = models.BooleanField("再送に市の承認が必要", default=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "再送の設定"

    def __str__(self) -> str:
        return f"{self.municipality} 再送設定"


class Reshipment(models.Model):
    class Status(models.TextChoices):
        SUPERVISOR_PENDING = "supervisor_pending", "SV承認待ち"
        CITY_PENDING = "city_pending", "市の承認待ち"
        APPROVED = "approved", "承認済（手配中）"
        ACCEPTED = "accepted", "基幹受付済"
        SHIPPED = "shipped", "発送済"
        DELIVERED = "delivered", "配達完了"
        REFUSED = "refused", "却下"
        CORE_REFUSED = "core_refused", "基幹で受付不可"

    PENDING = (Status.SUPERVISOR_PENDING, Status.CITY_PENDING)

    municipality = models.ForeignKey(
        Municipality, on_delete=models.PROTECT, related_name="reshipments"
    )
    # Returned gifts are resent from the returned-mail worklist, which has no ticket.
    inquiry = models.ForeignKey(
        "tickets.Inquiry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reshipments",
    )
    original = models.ForeignKey(
        Shipment, on_delete=models.PROTECT, related_name="reshipment_requests"
    )
    replacement = models.OneToOneField(
        Shipment, null=True, blank=True, on_delete=models.PROTECT, related_name="reshipment"
    )
    reason = models.CharField("理由", max_length=16, choices=Reason.choices)
    fault = models.CharField("原因者", max_length=10, choices=Fault.choices)
    billable_to_city = models.BooleanField("市の負担")
    # The same gift, or a substitute of the same municipality (代品, Fujisawa 3(11)).
    gift_item = models.ForeignKey(GiftItem, on_delete=models.PROTECT, related_name="+")
    photos = models.ManyToManyField("ticketmail.InboundAttachment", blank=True, related_name="+")
    ship_to_name = models.CharField("送り先氏名", max_length=80)
    ship_to_postal_code = models.CharField("送り先郵便番号", max_length=7)
    ship_to_address = models.CharField("送り先住所", max_length=300)
    ship_to_phone = models.CharField("送り先電話番号", max_length=16, blank=True)
    address_corrected = models.BooleanField("住所訂正", default=False)
    desired_date = models.DateField("配達希望日", null=True, blank=True)
    desired_time_slot = models.CharField(
        "配達希望時間帯", max_length=6, choices=Shipment.TimeSlot.choices, default="", blank=True
    )
    gift_cost = models.PositiveIntegerField("返礼品代", default=0)
    shipping_cost = models.PositiveIntegerField("送料", default=0)
    note = models.TextField("備考", blank=True)
    status = models.CharField(
        "状態", max_length=20, choices=Status.choices, default=Status.SUPERVISOR_PENDING
    )
    # Decided when the request was made, so a later change of the setting does not move a
    # request already on its way.
    city_approval_required = models.BooleanField("市の承認が必要", default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField("依頼日時")
    supervisor_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    supervisor_approved_at = models.DateTimeField("SV承認日時", null=True, blank=True)
    city_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    city_decided_at = models.DateTimeField("市の判断日時", null=True, blank=True)
    city_comment = models.TextField("市のコメント", blank=True)
    refused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refused_at = models.DateTimeField("却下日時", null=True, blank=True)
    refusal_comment = models.TextField("却下の理由", blank=True)
    # The final approval: the replacement shipment and the outbox message exist from then on.
    approved_at = models.DateTimeField("承認日時", null=True, blank=True)
    core_detail = models.CharField("基幹からの回答", max_length=300, blank=True)
    donor_notified_at = models.DateTimeField("寄附者へ通知", null=True, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "再送"
        ordering = ["-requested_at", "-id"]
        indexes = [
            models.Index(fields=["municipality", "status"], name="reshipment_muni_status"),
            models.Index(fields=["municipality", "approved_at"], name="reshipment_muni_approved"),
        ]

    def __str__(self) -> str:
        return f"再送 #{self.pk}"

    @property
    def idempotency_key(self) -> str:
        """The one key the core knows this re-shipment by: a retried delivery or a second
        click never becomes a second parcel."""
        return f"reshipment-{self.pk}"

    @property
    def substitute(self) -> bool:
        return self.gift_item_id != self.original.gift_item_id

    @property
    def total_cost(self) -> int:
        return self.gift_cost + self.shipping_cost


class ReturnedItem(models.Model):
    """One returned piece of mail or parcel (住所不明返送): a call-back task for the agents."""

    class Kind(models.TextChoices):
        GIFT = "gift", "返礼品"
        RECEIPT = "receipt", "寄附金受領証明書"
        ONE_STOP = "one_stop", "ワンストップ特例申請書"

    class Status(models.TextChoices):
        OPEN = "open", "折り返し待ち"
        CONFIRMED = "confirmed", "住所確認済"
        CLOSED = "closed", "終了"

    class Source(models.TextChoices):
        FORM = "form", "画面入力"
        CSV = "csv", "CSV取込"

    municipality = models.ForeignKey(
        Municipality, on_delete=models.PROTECT, related_name="returned_items"
    )
    donor = models.ForeignKey(Donor, on_delete=models.PROTECT, related_name="returned_items")
    donation = models.ForeignKey(
        Donation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    shipment = models.ForeignKey(
        Shipment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField("返送物", max_length=10, choices=Kind.choices)
    returned_on = models.DateField("返送日")
    note = models.TextField("備考", blank=True)
    source = models.CharField("登録方法", max_length=4, choices=Source.choices)
    status = models.CharField("状態", max_length=10, choices=Status.choices, default=Status.OPEN)
    confirmed_postal_code = models.CharField("確認した郵便番号", max_length=7, blank=True)
    confirmed_address = models.CharField("確認した住所", max_length=300, blank=True)
    reshipment = models.OneToOneField(
        Reshipment, null=True, blank=True, on_delete=models.SET_NULL, related_name="returned_item"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "住所不明返送"
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["municipality", "status"], name="returned_muni_status")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.donor}"


class CallbackAttempt(models.Model):
    """One call to the donor about a returned item."""

    class Outcome(models.TextChoices):
        NO_ANSWER = "no_answer", "不在・応答なし"
        WRONG_NUMBER = "wrong_number", "番号違い"
        CALL_AGAIN = "call_again", "掛け直し希望"
        CONFIRMED = "confirmed", "住所確認（再送）"
        NOT_NEEDED = "not_needed", "再送不要"

    item = models.ForeignKey(ReturnedItem, on_delete=models.CASCADE, related_name="attempts")
    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField("日時")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField("結果", max_length=12, choices=Outcome.choices)
    note = models.CharField("メモ", max_length=300, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "折り返し記録"
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} {self.at:%Y-%m-%d %H:%M}"


class ReturnedImport(models.Model):
    """One CSV of returned items: what it added, and every row it could not read, kept with
    its reason and its cells (nothing of the file is dropped)."""

    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="+")
    original_name = models.CharField("ファイル名", max_length=255)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    added = models.PositiveIntegerField("登録", default=0)
    rejections = models.JSONField("取込不可行", default=list, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "住所不明返送の取込"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.original_name
