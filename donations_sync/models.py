"""The mirror of the donation and fulfillment core: donations, gift items, shipments."""

from __future__ import annotations

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import RangeOperators
from django.db import models

from crm.access import MunicipalityScopedQuerySet
from crm.models import Carrier, Donor, Municipality, Provider


class Portal(models.TextChoices):
    CHOICE = "choice", "ふるさとチョイス"
    RAKUTEN = "rakuten", "楽天ふるさと納税"
    SATOFULL = "satofull", "さとふる"
    FURUNAVI = "furunavi", "ふるなび"
    ANA = "ana", "ANAのふるさと納税"
    JRE = "jre", "JRE MALLふるさと納税"
    AUPAY = "aupay", "au PAY ふるさと納税"
    DIRECT = "direct", "自治体直接（郵送・窓口）"


class PaymentMethod(models.TextChoices):
    CREDIT_CARD = "credit_card", "クレジットカード"
    BANK_TRANSFER = "bank_transfer", "銀行振込"
    POSTAL_TRANSFER = "postal_transfer", "郵便振替"
    CONVENIENCE_STORE = "convenience_store", "コンビニ決済"
    PAYPAY = "paypay", "PayPay"
    CASH = "cash", "現金（窓口）"


class Donation(models.Model):
    class Status(models.TextChoices):
        APPLIED = "applied", "申込"
        PAID = "paid", "入金済"
        CANCELLED = "cancelled", "取消"
        REFUNDED = "refunded", "返金済"

    # No index of its own on a foreign key that leads a composite index below (that one serves
    # the same lookups and cascades; each index is written again by every imported row).
    municipality = models.ForeignKey(
        Municipality, on_delete=models.PROTECT, related_name="donations", db_index=False
    )
    donor = models.ForeignKey(
        Donor, on_delete=models.PROTECT, related_name="donations", db_index=False
    )
    portal = models.CharField("ポータル", max_length=12, choices=Portal.choices)
    portal_order_number = models.CharField("受付番号", max_length=40, blank=True)
    external_id = models.CharField("外部管理番号", max_length=40, blank=True)
    # For a row of an import carrying neither number (only 寄附者番号): donor number, date and
    # amount, so that importing the same file again finds the same donation.
    import_key = models.CharField("取込キー", max_length=64, blank=True)
    donated_at = models.DateTimeField("申込日時")
    paid_on = models.DateField("入金日", null=True, blank=True)
    amount = models.PositiveIntegerField("寄附金額")
    payment_method = models.CharField("払込方法", max_length=20, choices=PaymentMethod.choices)
    one_stop_requested = models.BooleanField("ワンストップ特例希望", default=False)
    one_stop_received_on = models.DateField("ワンストップ申請書受付日", null=True, blank=True)
    receipt_issued_on = models.DateField("受領証明書発行日", null=True, blank=True)
    gift_declined = models.BooleanField("返礼品辞退", default=False)
    status = models.CharField("状態", max_length=12, choices=Status.choices, default=Status.APPLIED)
    note = models.TextField("備考", blank=True)
    # When the core last changed this record, as its change feed says: an update carrying an
    # older time is stale (it arrived out of order) and is not applied.
    core_updated_at = models.DateTimeField("基幹システム更新日時", null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "寄附"
        constraints = [
            models.UniqueConstraint(
                fields=["municipality", "portal", "portal_order_number"],
                condition=~models.Q(portal_order_number=""),
                name="donation_portal_order_unique",
            ),
            models.UniqueConstraint(
                fields=["municipality", "external_id"],
                condition=~models.Q(external_id=""),
                name="donation_external_id_unique",
            ),
            models.UniqueConstraint(
                fields=["municipality", "import_key"],
                condition=~models.Q(import_key=""),
                name="donation_import_key_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="donation_amount_positive"
            ),
        ]
        indexes = [
            # Donors quote the number without saying which city or portal: a global probe.
            models.Index(fields=["portal_order_number"], name="donation_portal_order"),
            models.Index(fields=["external_id"], name="donation_external_id"),
            models.Index(fields=["donor", "-donated_at"], name="donation_donor_recent"),
            models.Index(fields=["municipality", "-donated_at"], name="donation_muni_recent"),
        ]

    def __str__(self) -> str:
        return self.portal_order_number or self.external_id or f"寄附 {self.pk}"


class GiftItem(models.Model):
    municipality = models.ForeignKey(
        Municipality, on_delete=models.PROTECT, related_name="gift_items"
    )
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="gift_items")
    code = models.CharField("返礼品コード", max_length=30)
    name = models.CharField("返礼品名", max_length=200)
    # Seasonal gifts ship only inside a window of months (e.g. melons June–August).
    season_start_month = models.PositiveSmallIntegerField("発送開始月", null=True, blank=True)
    season_end_month = models.PositiveSmallIntegerField("発送終了月", null=True, blank=True)
    deliveries = models.PositiveSmallIntegerField("定期便回数", default=1)
    perishable = models.BooleanField("生もの", default=False)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "返礼品"
        constraints = [
            models.UniqueConstraint(fields=["municipality", "code"], name="giftitem_code_unique"),
            models.CheckConstraint(
                condition=models.Q(season_start_month__isnull=True)
                | models.Q(season_start_month__gte=1, season_start_month__lte=12),
                name="giftitem_season_start_month",
            ),
            models.CheckConstraint(
                condition=models.Q(season_end_month__isnull=True)
                | models.Q(season_end_month__gte=1, season_end_month__lte=12),
                name="giftitem_season_end_month",
            ),
            models.CheckConstraint(
                condition=models.Q(deliveries__gte=1), name="giftitem_deliveries_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"[{self.code}] {self.name}"

    @property
    def is_subscription(self) -> bool:
        return self.deliveries > 1


class PostgresExclusionConstraint(ExclusionConstraint):
    """An exclusion constraint on PostgreSQL, none on the embedded SQLite demo (which has no
    EXCLUDE): there the importer's and the change feed's own checks hold the rule alone."""

    def constraint_sql(self, model, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return None
        return super().constraint_sql(model, schema_editor)

    def create_sql(self, model, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return None
        return super().create_sql(model, schema_editor)

    def remove_sql(self, model, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return None
        return super().remove_sql(model, schema_editor)


class Shipment(models.Model):
    """One gift item of a donation (one delivery of a 定期便), shipped on its own."""

    class Status(models.TextChoices):
        PENDING = "pending", "出荷待ち"
        REQUESTED = "requested", "出荷依頼済"
        SHIPPED = "shipped", "発送済"
        DELIVERED = "delivered", "配達完了"
        RETURNED = "returned", "返送（住所不明等）"
        LOST = "lost", "紛失"
        CANCELLED = "cancelled", "取消"

    class TimeSlot(models.TextChoices):
        NONE = "", "指定なし"
        MORNING = "am", "午前中"
        T14_16 = "14-16", "14時〜16時"
        T16_18 = "16-18", "16時〜18時"
        T18_20 = "18-20", "18時〜20時"
        T19_21 = "19-21", "19時〜21時"

    # No index of its own on a foreign key that leads a composite index below (that one serves
    # the same lookups and cascades; each index is written again by every imported row).
    municipality = models.ForeignKey(
        Municipality, on_delete=models.PROTECT, related_name="shipments", db_index=False
    )
    donation = models.ForeignKey(Donation, on_delete=models.CASCADE, related_name="shipments")
    gift_item = models.ForeignKey(GiftItem, on_delete=models.PROTECT, related_name="shipments")
    delivery_number = models.PositiveSmallIntegerField("回次", default=1)
    ship_to_name = models.CharField("送り先氏名", max_length=80)
    ship_to_kana = models.CharField("送り先フリガナ", max_length=160, blank=True)
    ship_to_postal_code = models.CharField("送り先郵便番号", max_length=7)
    ship_to_address = models.CharField("送り先住所", max_length=300)
    ship_to_phone = models.CharField("送り先電話番号(E.164)", max_length=16, blank=True)
    desired_date = models.DateField("配達希望日", null=True, blank=True)
    desired_time_slot = models.CharField(
        "配達希望時間帯", max_length=6, choices=TimeSlot.choices, default="", blank=True
    )
    carrier = models.ForeignKey(
        Carrier, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    tracking_number = models.CharField("伝票番号", max_length=20, blank=True)
    # False: the number fails its carrier's check digit. Kept (the carrier's own number is the
    # truth on the parcel) but flagged on every screen; None: no number yet.
    tracking_valid = models.BooleanField("伝票番号チェック", null=True, blank=True)
    shipped_on = models.DateField("発送日", null=True, blank=True)
    delivered_on = models.DateField("配達日", null=True, blank=True)
    status = models.CharField("状態", max_length=12, choices=Status.choices, default=Status.PENDING)
    # A re-shipment (再送・代品) points at the shipment it replaces.
    replaces = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replacements"
    )
    core_updated_at = models.DateTimeField("基幹システム更新日時", null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "配送"
        ordering = ["donation_id", "delivery_number", "id"]
        constraints = [
            # Several gift items of one donation often travel in one parcel (楽天 and other
            # portals print one お荷物伝票番号 for the whole order), so a carrier's number may be
            # shared by the shipments of ONE donation, never by two donations. A unique index
            # cannot say "equal number, different donation"; an exclusion constraint can.
            PostgresExclusionConstraint(
                name="shipment_tracking_one_donation",
                # The number's hash leads the GiST index: btree_gist's text keys split the tree
                # poorly (and a carrier id has a handful of values), so with the number or the
                # carrier first every insert cost ~60 µs; with an integer that spreads the
                # numbers, ~12 µs. The number itself is still compared (hashes collide).
                expressions=[
                    (
                        models.Func(
                            "tracking_number",
                            function="hashtext",
                            output_field=models.IntegerField(),
                        ),
                        RangeOperators.EQUAL,
                    ),
                    ("tracking_number", RangeOperators.EQUAL),
                    ("carrier", RangeOperators.EQUAL),
                    ("donation", RangeOperators.NOT_EQUAL),
                ],
                condition=~models.Q(tracking_number=""),
            ),
            models.CheckConstraint(
                condition=~models.Q(replaces=models.F("id")), name="shipment_not_replacing_itself"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="shipped", shipped_on__isnull=True),
                name="shipment_shipped_has_date",
            ),
        ]
        indexes = [
            models.Index(fields=["tracking_number"], name="shipment_tracking"),
            models.Index(fields=["municipality", "ship_to_phone"], name="shipment_muni_phone"),
            models.Index(
                fields=["municipality", "ship_to_postal_code"], name="shipment_muni_postal"
            ),
            models.Index(fields=["municipality", "status"], name="shipment_muni_status"),
        ]

    def __str__(self) -> str:
        return f"{self.gift_item.name} {self.delivery_number}回目"

    @property
    def tracking_url(self) -> str:
        # A number failing its check digit would link to someone else's parcel, or none.
        if self.carrier and self.tracking_number and self.tracking_valid is not False:
            return self.carrier.tracking_url(self.tracking_number)
        return ""


# --- Imports of the portals' and management systems' CSV exports ---------------------------


class ImportStyle(models.TextChoices):
    CHOICE = "choice", "ふるさとチョイス形式"
    FURUSATO360 = "furusato360", "Furusato360形式"
    RAKUTEN = "rakuten", "楽天ふるさと納税 受注CSV"


class ImportMapping(models.Model):
    """A municipality's saved column mapping for one source (an edited copy of a preset)."""

    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="import_mappings"
    )
    style = models.CharField("取込形式", max_length=12, choices=ImportStyle.choices)
    name = models.CharField("名前", max_length=60)
    # The shape of donations_sync.imports.styles (checked by imports.reader.check_mapping).
    mapping = models.JSONField("列の対応表")
    updated_by = models.ForeignKey(
        "crm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "列の対応表"
        constraints = [
            models.UniqueConstraint(
                fields=["municipality", "name"], name="importmapping_name_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ImportRun(models.Model):
    """One file imported (or re-run) into one municipality's mirror, and how every row ended."""

    class Status(models.TextChoices):
        QUEUED = "queued", "待機中"
        RUNNING = "running", "取込中"
        DONE = "done", "完了"
        FAILED = "failed", "取込不可"  # the file as a whole: header, encoding, mapping

    municipality = models.ForeignKey(
        Municipality, on_delete=models.PROTECT, related_name="import_runs"
    )
    style = models.CharField("取込形式", max_length=12, choices=ImportStyle.choices)
    saved_mapping = models.ForeignKey(
        ImportMapping, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    # The mapping as it was used: a later edit of the saved one does not rewrite history.
    mapping = models.JSONField("列の対応表")
    encoding = models.CharField("文字コード指定", max_length=20, blank=True)  # '' = detect
    detected_encoding = models.CharField("文字コード", max_length=20, blank=True)
    raw_file = models.FileField("取込ファイル", upload_to="imports/%Y/%m/")
    original_name = models.CharField("ファイル名", max_length=255)
    size = models.BigIntegerField("サイズ", default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    created_by = models.ForeignKey(
        "crm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField("取込不可の理由", blank=True)
    unknown_columns = models.JSONField("対応表にない列", default=list, blank=True)
    rows_read = models.PositiveIntegerField("読込行数", default=0)  # progress while running
    bytes_read = models.BigIntegerField("読込バイト数", default=0)  # progress against size
    # The last line whose batch committed: a run resumed after its worker died starts after it.
    resume_line = models.PositiveIntegerField(default=0)
    # Written with every batch: a running import whose heartbeat stopped was lost with its
    # worker, and the sweep hands it to another one.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    imported = models.PositiveIntegerField("新規", default=0)
    updated = models.PositiveIntegerField("更新", default=0)
    unchanged = models.PositiveIntegerField("変更なし", default=0)
    rejected = models.PositiveIntegerField("取込不可行", default=0)
    needs_callback = models.PositiveIntegerField("要確認", default=0)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "取込"
        indexes = [models.Index(fields=["municipality", "-created_at"], name="importrun_recent")]

    def __str__(self) -> str:
        return f"{self.original_name}（{self.get_status_display()}）"


class ImportRejection(models.Model):
    """A row of an import that was not applied, with where and why (Japanese)."""

    run = models.ForeignKey(ImportRun, on_delete=models.CASCADE, related_name="rejections")
    line = models.PositiveIntegerField("行")
    column = models.CharField("列", max_length=100, blank=True)
    reason = models.CharField("理由", max_length=300)
    raw = models.JSONField("元の行", default=list)  # the cells as read, for the download

    class Meta:
        verbose_name = verbose_name_plural = "取込不可行"
        ordering = ["run", "line"]
        indexes = [models.Index(fields=["run", "line"], name="importrejection_run_line")]

    def __str__(self) -> str:
        return f"{self.line}行目：{self.reason}"


class DonorCallback(models.Model):
    """要確認: an imported donor an agent must call back (incomplete or unreadable data)."""

    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="donor_callbacks"
    )
    donor = models.ForeignKey(Donor, on_delete=models.CASCADE, related_name="callbacks")
    donation = models.ForeignKey(
        Donation, null=True, blank=True, on_delete=models.CASCADE, related_name="callbacks"
    )
    run = models.ForeignKey(
        ImportRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="callbacks"
    )
    reasons = models.JSONField("理由", default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        "crm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField("結果", max_length=200, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "要確認（折返し）"
        constraints = [
            # One open call-back per donation: a re-import does not stack them.
            models.UniqueConstraint(
                fields=["donor", "donation"],
                condition=models.Q(resolved_at__isnull=True),
                name="donorcallback_one_open",
            ),
        ]
        indexes = [
            models.Index(
                fields=["municipality", "created_at"],
                condition=models.Q(resolved_at__isnull=True),
                name="donorcallback_open",
            )
        ]

    def __str__(self) -> str:
        return f"要確認：{'、'.join(self.reasons)}"


class ImportedRow(models.Model):
    """A row an import applied, by the fingerprint of its raw cells (and the mapping read with).

    A later import meeting the same fingerprint for the same municipality knows the row is
    unchanged without parsing it: re-importing an export costs reading it, not parsing it.
    """

    # Its own index would repeat the unique constraint's leading column.
    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    fingerprint = models.CharField(max_length=32)  # BLAKE2b-128 hex
    # The row's number as the in-file duplicate rule reads it ("o:受付番号", "x:外部管理番号",
    # "k:import key"), so a known row still counts for that rule without being read again;
    # '' for rows recorded before it was kept (their number is read from the row).
    key = models.CharField(max_length=80, blank=True, default="")
    run = models.ForeignKey(
        ImportRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = verbose_name_plural = "取込済みの行"
        constraints = [
            models.UniqueConstraint(
                fields=["municipality", "fingerprint"], name="importedrow_fingerprint_unique"
            )
        ]

    def __str__(self) -> str:
        return self.fingerprint


# --- The core's change feed (donations_sync.feed) ----------------------------------------


class CoreFeedCursor(models.Model):
    """Where the pull of the core's change feed stands. Saved in the same transaction as the
    page it follows, and locked (SELECT … FOR UPDATE SKIP LOCKED) by the run that pulls."""

    name = models.CharField(max_length=30, unique=True, default="core")
    cursor = models.CharField("カーソル", max_length=500, blank=True)
    pulled_at = models.DateTimeField("最終取得日時", null=True, blank=True)
    failures = models.PositiveIntegerField("連続失敗回数", default=0)
    next_attempt_at = models.DateTimeField("次回取得", null=True, blank=True)
    last_error = models.CharField("最後のエラー", max_length=500, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "基幹システム変更取得位置"

    def __str__(self) -> str:
        return f"{self.name}: {self.cursor or '（先頭）'}"


class CoreChange(models.Model):
    """Every change the core sent, pulled or pushed, once per change id, and how it ended.

    The receipt log makes the feed idempotent (a change id seen before is a duplicate); the
    quarantined ones (unknown municipality or record, unreadable data) wait here with their
    reason until someone retries them, and unreadable pushes are kept with their raw body.
    """

    class Source(models.TextChoices):
        PULL = "pull", "取得"
        PUSH = "push", "受信"

    class Outcome(models.TextChoices):
        APPLIED = "applied", "反映済"
        STALE = "stale", "古い更新（反映せず）"
        QUARANTINED = "quarantined", "保留"

    # Null only for input that named no id (unreadable JSON, a change without "id").
    change_id = models.CharField("変更ID", max_length=100, null=True, blank=True, unique=True)
    kind = models.CharField("種別", max_length=12, blank=True)
    municipality = models.ForeignKey(
        Municipality, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    municipality_code = models.CharField("団体コード", max_length=20, blank=True)
    changed_at = models.DateTimeField("基幹システム変更日時", null=True, blank=True)
    source = models.CharField("経路", max_length=4, choices=Source.choices)
    outcome = models.CharField("結果", max_length=12, choices=Outcome.choices)
    reason = models.CharField("理由", max_length=500, blank=True)
    payload = models.JSONField("内容", null=True, blank=True)
    raw = models.TextField("受信データ（読めなかったもの）", blank=True)
    raw_sha256 = models.CharField(max_length=64, blank=True)
    donation = models.ForeignKey(
        Donation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    shipment = models.ForeignKey(
        Shipment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attempts = models.PositiveIntegerField("処理回数", default=1)
    received_at = models.DateTimeField("受信日時", auto_now_add=True)
    applied_at = models.DateTimeField("反映日時", null=True, blank=True)
    retried_by = models.ForeignKey(
        "crm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    retried_at = models.DateTimeField("最後の再処理", null=True, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "基幹システムの変更"
        indexes = [
            models.Index(
                fields=["municipality", "-received_at"],
                condition=models.Q(outcome="quarantined"),
                name="corechange_quarantined",
            ),
            models.Index(fields=["raw_sha256"], name="corechange_raw_sha256"),
        ]

    def __str__(self) -> str:
        return f"{self.change_id or '（ID なし）'} {self.get_outcome_display()}"


class CoreShipmentId(models.Model):
    """The core's own id of a shipment: how its later changes find our row."""

    core_id = models.CharField("基幹システム配送ID", max_length=100, unique=True)
    shipment = models.OneToOneField(Shipment, on_delete=models.CASCADE, related_name="core_ref")

    class Meta:
        verbose_name = verbose_name_plural = "基幹システム配送ID"

    def __str__(self) -> str:
        return self.core_id


# --- The outbox: decisions sent to the core (donations_sync.outbox) -----------------------


class OutboxMessage(models.Model):
    """One decision for the core (a re-shipment, an address change, …), written in the same
    transaction as the decision and delivered afterwards over HTTP with ``idempotency_key``.

    The row is the durable promise: a worker claims it (status 配信中 with a lease in
    ``next_attempt_at``), and a message whose worker died is due again once the lease runs out.
    The core's Idempotency-Key handling makes a second delivery of an accepted message a no-op.
    """

    class Kind(models.TextChoices):
        RESHIPMENT = "reshipment", "再送・代品手配"
        ADDRESS_CHANGE = "address_change", "住所変更"
        RECEIPT_REISSUE = "receipt_reissue", "寄附金受領証明書 再発行"
        ONESTOP_RESEND = "onestop_resend", "ワンストップ特例申請書 再送"
        CATALOGUE_REQUEST = "catalogue_request", "カタログ送付依頼"
        CANCELLATION_REQUEST = "cancellation_request", "キャンセル依頼（記録のみ）"

    class Status(models.TextChoices):
        PENDING = "pending", "送信待ち"
        DELIVERING = "delivering", "送信中"
        ACCEPTED = "accepted", "受付済み"
        REFUSED = "refused", "拒否"
        DEAD = "dead", "配信停止"
        CANCELLED = "cancelled", "取消"

    municipality = models.ForeignKey(
        Municipality, on_delete=models.PROTECT, related_name="outbox_messages"
    )
    kind = models.CharField("種別", max_length=24, choices=Kind.choices)
    payload = models.JSONField("内容", default=dict)
    idempotency_key = models.CharField("冪等キー", max_length=100, unique=True)
    # The shipment the decision is about (for a re-shipment: the replacement row).
    shipment = models.ForeignKey(
        Shipment, null=True, blank=True, on_delete=models.SET_NULL, related_name="outbox_messages"
    )
    donation = models.ForeignKey(
        Donation, null=True, blank=True, on_delete=models.SET_NULL, related_name="outbox_messages"
    )
    status = models.CharField("状態", max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField("送信回数", default=0)
    # Pending: when the next attempt is due. Delivering: when the claim's lease runs out (a
    # worker killed mid-delivery leaves the message due again then).
    next_attempt_at = models.DateTimeField("次回送信", null=True, blank=True)
    last_attempt_at = models.DateTimeField("最終送信", null=True, blank=True)
    last_error = models.CharField("最後のエラー", max_length=500, blank=True)
    core_reference = models.CharField("基幹システム受付番号", max_length=100, blank=True)
    # The core's latest answer (accepted, tracking, shipped, delivered, refused) and when it
    # said so: an answer older than this one is stale and not applied.
    answer = models.CharField("基幹システムの回答", max_length=12, blank=True)
    answered_at = models.DateTimeField("回答日時", null=True, blank=True)
    refusal_reason = models.CharField("拒否理由", max_length=500, blank=True)
    created_at = models.DateTimeField("作成日時", auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "基幹システムへの送信"
        indexes = [
            # The delivery scan: due pending messages and expired claims, oldest first.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status__in=["pending", "delivering"]),
                name="outbox_due",
            ),
            models.Index(
                fields=["municipality", "status", "-created_at"], name="outbox_muni_status"
            ),
            models.Index(fields=["shipment"], name="outbox_shipment"),
            models.Index(fields=["donation"], name="outbox_donation"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}（{self.get_status_display()}）"
