"""Mail intake and outbound mail: mailboxes, every raw message received, triage rules, replies.

Every inbound message is stored raw before anything else happens, so nothing is ever lost;
its status says what became of it (processed into a ticket, quarantined with a reason, ignored
as an auto-reply, matched as a bounce). Outbound mail keeps our Message-IDs so replies thread.
"""

from __future__ import annotations

from django.db import models

from crm.access import MunicipalityScopedQuerySet
from crm.models import Municipality, MunicipalityEmailAddress
from crm.secrets import EncryptedCharField


class Mailbox(models.Model):
    """How we fetch one inbound address, and how we write from it."""

    class Protocol(models.TextChoices):
        NONE = "none", "取得しない（MTA配送・maildir）"
        IMAP = "imap", "IMAP"
        POP3 = "pop3", "POP3"

    class Charset(models.TextChoices):
        UTF8 = "utf-8", "UTF-8"
        ISO2022JP = "iso-2022-jp", "ISO-2022-JP"

    address = models.OneToOneField(
        MunicipalityEmailAddress, on_delete=models.CASCADE, related_name="mailbox"
    )
    # Denormalized from the address so every query scopes with one column.
    municipality = models.ForeignKey(Municipality, on_delete=models.CASCADE, related_name="+")
    protocol = models.CharField(
        "取得方式", max_length=8, choices=Protocol.choices, default=Protocol.NONE
    )
    host = models.CharField("サーバー", max_length=200, blank=True)
    port = models.PositiveIntegerField("ポート", null=True, blank=True)
    use_ssl = models.BooleanField("SSL/TLS", default=True)
    username = models.CharField("ユーザー名", max_length=200, blank=True)
    password = EncryptedCharField("パスワード", blank=True)
    folder = models.CharField("フォルダ", max_length=200, default="INBOX")
    outbound_charset = models.CharField(
        "送信文字コード", max_length=16, choices=Charset.choices, default=Charset.UTF8
    )
    display_name = models.CharField("差出人名", max_length=100, blank=True)
    # Put the reply token in the Reply-To plus-part (local+token@domain); needs MTA support.
    plus_addressing = models.BooleanField("返信用アドレスにトークンを付ける", default=True)
    active = models.BooleanField("有効", default=True)
    last_polled_at = models.DateTimeField("最終取得", null=True, blank=True)
    last_error = models.TextField("最終エラー", blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "受信メールボックス"

    def __str__(self) -> str:
        return str(self.address)

    def save(self, *args, **kwargs):
        self.municipality_id = self.address.municipality_id
        super().save(*args, **kwargs)


class MunicipalityMailSettings(models.Model):
    """Per-municipality mail behaviour; absent means the defaults (no acknowledgement)."""

    municipality = models.OneToOneField(
        Municipality, on_delete=models.CASCADE, related_name="mail_settings"
    )
    acknowledgement_enabled = models.BooleanField("受付自動返信を送る", default=False)
    acknowledgement_subject = models.CharField(
        "受付自動返信の件名", max_length=200, default="【受付】{subject}"
    )
    acknowledgement_body = models.TextField(
        "受付自動返信の本文",
        default=(
            "{municipality}ふるさと納税コールセンターです。\n"
            "お問合せを受け付けました（受付番号 {ticket_id}）。\n"
            "担当者より順次ご連絡いたします。"
        ),
    )

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "自治体メール設定"

    def __str__(self) -> str:
        return f"{self.municipality_id} メール設定"


class InboundMessage(models.Model):
    class Source(models.TextChoices):
        IMAP = "imap", "IMAP"
        POP3 = "pop3", "POP3"
        PIPE = "pipe", "MTA配送"
        MAILDIR = "maildir", "maildir"

    class Status(models.TextChoices):
        RECEIVED = "received", "受信（未処理）"
        PROCESSED = "processed", "処理済"
        QUARANTINED = "quarantined", "隔離"
        AUTO_REPLY = "auto_reply", "自動応答（対応不要）"
        BOUNCE = "bounce", "不達通知"
        DUPLICATE = "duplicate", "重複"

    municipality = models.ForeignKey(
        Municipality,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="自治体",
    )
    mailbox = models.ForeignKey(
        Mailbox, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField("受信経路", max_length=8, choices=Source.choices)
    recipient = models.CharField("受信アドレス", max_length=254, blank=True)
    raw = models.BinaryField("原文")
    # sha256 over municipality id + raw bytes: the same mail to two cities is two messages.
    content_hash = models.CharField(max_length=64, unique=True)
    message_id = models.CharField("Message-ID", max_length=500, blank=True)
    from_address = models.CharField("差出人", max_length=254, blank=True)
    subject = models.CharField("件名", max_length=500, blank=True)
    received_at = models.DateTimeField("受信日時", auto_now_add=True)
    status = models.CharField(
        "状態", max_length=12, choices=Status.choices, default=Status.RECEIVED
    )
    reason = models.TextField("理由", blank=True)
    attempts = models.PositiveSmallIntegerField("処理回数", default=0)
    processed_at = models.DateTimeField("処理日時", null=True, blank=True)
    inquiry = models.ForeignKey(
        "tickets.Inquiry",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_mail",
    )
    followup_id = models.IntegerField(null=True, blank=True)
    created_inquiry = models.BooleanField("新規問合せ", default=False)
    # When the sender was told the municipality is suspended (once per sender and suspension).
    suspended_notice_at = models.DateTimeField("受付停止の通知", null=True, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "受信メール"
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["municipality", "message_id"], name="inbound_muni_msgid"),
            models.Index(
                fields=["municipality", "from_address", "received_at"], name="inbound_sender_rate"
            ),
            models.Index(
                fields=["municipality", "-received_at"],
                condition=models.Q(status="quarantined"),
                name="inbound_quarantine",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_address} {self.subject}"


class InboundAttachment(models.Model):
    class Status(models.TextChoices):
        KEPT = "kept", "保存"
        REFUSED = "refused", "拒否"

    message = models.ForeignKey(
        InboundMessage, on_delete=models.CASCADE, related_name="attachments"
    )
    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="+")
    inquiry = models.ForeignKey(
        "tickets.Inquiry",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="mail_attachments",
    )
    filename = models.CharField("ファイル名", max_length=255)
    declared_type = models.CharField("申告された形式", max_length=100, blank=True)
    sniffed_type = models.CharField("判定した形式", max_length=100, blank=True)
    size = models.PositiveIntegerField("サイズ")
    data = models.BinaryField(blank=True)
    status = models.CharField("状態", max_length=8, choices=Status.choices)
    refused_reason = models.CharField("拒否理由", max_length=200, blank=True)
    # Looks like a My Number (個人番号) document: shown only to supervisors, access logged.
    restricted = models.BooleanField("閲覧制限", default=False)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "受信添付ファイル"

    def __str__(self) -> str:
        return self.filename

    @property
    def is_image(self) -> bool:
        return self.status == self.Status.KEPT and self.sniffed_type.startswith("image/")


class InquiryMailThread(models.Model):
    """The unguessable reply token of one inquiry, and who it was opened by mail from."""

    inquiry = models.OneToOneField(
        "tickets.Inquiry", on_delete=models.CASCADE, primary_key=True, related_name="mail_thread"
    )
    municipality = models.ForeignKey(Municipality, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=32, unique=True)
    requester_address = models.CharField("問合せ者アドレス", max_length=254, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "メールスレッド"

    def __str__(self) -> str:
        return f"#{self.inquiry_id}"


class OutboundMessage(models.Model):
    """One mail we decided to send: sent at most once per decision.

    A worker claims the row (``sending`` with a lease) in its own committed transaction before
    it talks to the SMTP server, and marks it ``sent`` in another one afterwards. A row still
    ``sending`` after its lease means the worker died mid-send: the server may have accepted the
    mail, so it becomes ``unknown`` and waits for a person's decision instead of a resend.
    """

    class Kind(models.TextChoices):
        REPLY = "reply", "返信"
        ACKNOWLEDGEMENT = "ack", "受付自動返信"

    class Status(models.TextChoices):
        PENDING = "pending", "送信待ち"
        SENDING = "sending", "送信中"
        SENT = "sent", "送信済"
        RETRYING = "retrying", "再送待ち"
        FAILED = "failed", "送信失敗"
        UNKNOWN = "unknown", "送信結果不明"

    # What a supervisor's 再送 applies to: a person decides, no sweep ever resends these.
    RESENDABLE = (Status.FAILED, Status.UNKNOWN)

    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="+")
    inquiry = models.ForeignKey(
        "tickets.Inquiry", on_delete=models.CASCADE, related_name="outbound_mail"
    )
    mailbox = models.ForeignKey(Mailbox, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField("種別", max_length=8, choices=Kind.choices)
    followup_id = models.IntegerField(null=True, blank=True)
    message_id = models.CharField("Message-ID", max_length=255, unique=True)
    from_address = models.CharField("差出人", max_length=254)
    to_address = models.CharField("宛先", max_length=254, blank=True)
    subject = models.CharField("件名", max_length=300)
    body = models.TextField("本文")
    in_reply_to = models.CharField(max_length=500, blank=True)
    references = models.TextField(blank=True)
    charset = models.CharField("文字コード", max_length=16, default="utf-8")
    status = models.CharField("状態", max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField("送信回数", default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Until when the worker that claimed it may still be talking to the SMTP server.
    lease_until = models.DateTimeField("送信期限", null=True, blank=True)
    last_error = models.TextField("エラー", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField("送信日時", null=True, blank=True)
    bounced_at = models.DateTimeField("不達日時", null=True, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "送信メール"
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="retrying"),
                name="outbound_due",
            ),
            models.Index(
                fields=["created_at"],
                condition=models.Q(status="pending"),
                name="outbound_pending",
            ),
            models.Index(
                fields=["lease_until"],
                condition=models.Q(status="sending"),
                name="outbound_leased",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.to_address} {self.subject}"


class FlaggedAddress(models.Model):
    """An address our mail bounced from: agents see the flag before trusting it again."""

    municipality = models.ForeignKey(Municipality, on_delete=models.CASCADE, related_name="+")
    address = models.CharField("メールアドレス", max_length=254)
    reason = models.CharField("理由", max_length=500, blank=True)
    bounce_count = models.PositiveIntegerField("不達回数", default=0)
    last_bounced_at = models.DateTimeField("最終不達日時")
    outbound = models.ForeignKey(
        OutboundMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "不達アドレス"
        constraints = [
            models.UniqueConstraint(fields=["municipality", "address"], name="flagged_addr_unique")
        ]

    def __str__(self) -> str:
        return self.address


class TriageRule(models.Model):
    """Keywords in subject or body → suggested category and severity, per municipality."""

    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="+", verbose_name="自治体"
    )
    name = models.CharField("ルール名", max_length=60)
    # One keyword per line; matched on NFKC-normalized text, so ｶﾋﾞ and カビ are one word.
    keywords = models.TextField("キーワード（1行に1語）")
    category = models.ForeignKey(
        "tickets.Category",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="分類",
    )
    severity = models.CharField("重要度", max_length=8, blank=True)
    sort_order = models.PositiveSmallIntegerField("順序", default=100)
    active = models.BooleanField("有効", default=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "振り分けルール"
        ordering = ["municipality", "sort_order", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def keyword_list(self) -> list[str]:
        return [k.strip() for k in self.keywords.splitlines() if k.strip()]
