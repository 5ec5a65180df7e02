"""Who: municipalities, donors, providers, carriers, city contacts, operator staff."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Upper

from crm import normalize
from crm.access import MunicipalityScopedQuerySet


def validate_municipality_code(value: str) -> None:
    if not normalize.municipality_code_is_valid(value):
        raise ValidationError("全国地方公共団体コード（6桁・検査数字付き）が正しくありません。")


class Municipality(models.Model):
    code = models.CharField(
        "団体コード", max_length=6, unique=True, validators=[validate_municipality_code]
    )
    name = models.CharField("自治体名", max_length=40)
    name_kana = models.CharField("自治体名カナ", max_length=80)
    prefecture = models.CharField("都道府県", max_length=10)
    # What the agent says when answering this municipality's number.
    answer_name = models.CharField("応答名", max_length=80)
    residents_excluded = models.BooleanField("住民は返礼品対象外", default=True)
    contract_start = models.DateField("契約開始日", null=True, blank=True)
    contract_end = models.DateField("契約終了日", null=True, blank=True)
    # Call recordings are operator material; a city may ask to hear the calls of its inquiries.
    city_may_play_recordings = models.BooleanField("自治体職員による通話録音の再生", default=False)
    # Operator staff always pass TOTP; the city decides for its own officials (escalations are
    # acknowledged and instructed from their log-ins).
    city_officials_use_totp = models.BooleanField("自治体職員の二要素認証", default=False)
    # A suspended municipality keeps all its data, but its calls get a spoken notice instead of an
    # agent and its mail is held unrouted (telephony and tickets.mail check this).
    suspended_at = models.DateTimeField("受付停止日時", null=True, blank=True)
    suspended_reason = models.CharField("受付停止の理由", max_length=200, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager(municipality_field="id")

    class Meta:
        verbose_name = verbose_name_plural = "自治体"
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    @property
    def greeting(self) -> str:
        return f"お電話ありがとうございます。{self.answer_name}でございます。"

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None

    @property
    def suspended_notice(self) -> str:
        """What callers hear and senders read while the municipality is suspended."""
        return (
            f"{self.answer_name or self.name}の受付は、現在停止しております。"
            "お手数ですが、自治体のホームページでご案内をご確認ください。"
        )


class MunicipalityPhoneNumber(models.Model):
    """An inbound number: the number dialled decides the municipality."""

    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="phone_numbers"
    )
    e164 = models.CharField("電話番号(E.164)", max_length=16, unique=True)
    label = models.CharField("用途", max_length=40, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "自治体着信番号"

    def __str__(self) -> str:
        return self.e164


class MunicipalityEmailAddress(models.Model):
    """An inbound address; stored as ``normalize.normalize_email`` gives it, which mail routing
    and ``manage.py mail_mailbox`` also apply, so letter case never decides a match."""

    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="email_addresses"
    )
    address = models.EmailField("受信アドレス", unique=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "自治体受信アドレス"

    def __str__(self) -> str:
        return self.address

    def save(self, *args, **kwargs):
        self.address = normalize.normalize_email(self.address)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        # Before the uniqueness check, so a second spelling of an address is refused as a duplicate.
        self.address = normalize.normalize_email(self.address)


class Donor(models.Model):
    """A donor as known to one municipality: personal data serves only the city it was collected for."""

    # No index of its own on a foreign key that leads a composite index below (that one serves
    # the same lookups and cascades; each index is written again by every imported row).
    municipality = models.ForeignKey(
        Municipality, on_delete=models.PROTECT, related_name="donors", db_index=False
    )
    donor_number = models.CharField("寄附者番号", max_length=40, blank=True)
    name = models.CharField("氏名", max_length=80)
    name_kana = models.CharField("フリガナ(正規化)", max_length=160, blank=True)
    postal_code = models.CharField("郵便番号", max_length=7, blank=True)
    prefecture = models.CharField("都道府県", max_length=10, blank=True)
    address = models.CharField("住所", max_length=200, blank=True)
    building = models.CharField("建物名", max_length=120, blank=True)
    is_resident = models.BooleanField("自治体の住民", default=False)
    returned_mail = models.BooleanField("住所不明返送あり", default=False)
    do_not_contact = models.BooleanField("連絡不可", default=False)
    note = models.TextField("備考", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "寄附者"
        indexes = [
            # Prefix search on the reading. On PostgreSQL the column has the "C" collation
            # (migration crm 0004), so LIKE 'ヤマ%' ORDER BY name_kana is one range scan.
            models.Index(fields=["municipality", "name_kana"], name="donor_muni_kana"),
            models.Index(fields=["municipality", "postal_code"], name="donor_muni_postal"),
            models.Index(fields=["municipality", "name"], name="donor_muni_name"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["municipality", "donor_number"],
                condition=~models.Q(donor_number=""),
                name="donor_number_unique_per_municipality",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.name_kana = normalize.normalize_kana(self.name_kana)
        self.postal_code = normalize.normalize_postal_code(self.postal_code) or self.postal_code
        super().save(*args, **kwargs)

    @property
    def gets_no_gift(self) -> bool:
        return self.is_resident and self.municipality.residents_excluded


class DonorPhone(models.Model):
    # No index of its own on a foreign key that leads a composite index below (that one serves
    # the same lookups and cascades; each index is written again by every imported row).
    donor = models.ForeignKey(
        Donor, on_delete=models.CASCADE, related_name="phones", db_index=False
    )
    # Denormalized so that "caller ID within this municipality" is one index probe.
    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    e164 = models.CharField("電話番号(E.164)", max_length=16)
    raw = models.CharField("元の表記", max_length=40, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "寄附者電話番号"
        indexes = [models.Index(fields=["municipality", "e164"], name="donorphone_muni_e164")]
        constraints = [models.UniqueConstraint(fields=["donor", "e164"], name="donorphone_unique")]

    def __str__(self) -> str:
        return self.e164


class DonorEmail(models.Model):
    # No index of its own on a foreign key that leads a composite index below (that one serves
    # the same lookups and cascades; each index is written again by every imported row).
    donor = models.ForeignKey(
        Donor, on_delete=models.CASCADE, related_name="emails", db_index=False
    )
    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    address = models.CharField("メールアドレス", max_length=254)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "寄附者メールアドレス"
        indexes = [models.Index(fields=["municipality", "address"], name="donoremail_muni_addr")]
        constraints = [
            models.UniqueConstraint(fields=["donor", "address"], name="donoremail_unique")
        ]

    def __str__(self) -> str:
        return self.address

    def save(self, *args, **kwargs):
        self.address = normalize.normalize_email(self.address)
        super().save(*args, **kwargs)


class Provider(models.Model):
    """A local business that ships gifts (返礼品提供事業者)."""

    municipality = models.ForeignKey(
        Municipality, on_delete=models.PROTECT, related_name="providers"
    )
    code = models.CharField("事業者コード", max_length=20)
    name = models.CharField("事業者名", max_length=100)
    name_kana = models.CharField("事業者名カナ", max_length=160, blank=True)
    phone = models.CharField("電話番号(E.164)", max_length=16, blank=True)
    email = models.EmailField("メールアドレス", blank=True)
    contact_person = models.CharField("担当者", max_length=60, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "返礼品提供事業者"
        constraints = [
            models.UniqueConstraint(fields=["municipality", "code"], name="provider_code_unique")
        ]
        indexes = [models.Index(fields=["municipality", "phone"], name="provider_muni_phone")]

    def __str__(self) -> str:
        return self.name


class Carrier(models.Model):
    """Operator-wide: carriers are not owned by a municipality."""

    class TrackingRule(models.TextChoices):
        MOD7_12 = normalize.TRACKING_RULE_MOD7_12, "12桁・mod 7"
        MOD7_11 = normalize.TRACKING_RULE_MOD7_11, "11桁・mod 7"
        UPU_S10 = normalize.TRACKING_RULE_UPU_S10, "国際(UPU S10)"

    code = models.SlugField("コード", max_length=30, unique=True)
    name = models.CharField("配送業者名", max_length=60)
    short_name = models.CharField("略称", max_length=20)
    # "{number}" is replaced by the tracking number.
    tracking_url_template = models.CharField("追跡URL", max_length=300)
    tracking_rule = models.CharField("伝票番号規則", max_length=10, choices=TrackingRule.choices)

    class Meta:
        verbose_name = verbose_name_plural = "配送業者"

    def __str__(self) -> str:
        return self.name

    def tracking_url(self, number: str) -> str:
        return self.tracking_url_template.replace("{number}", number)

    def validate_tracking_number(self, raw: str) -> str:
        """Return the cleaned number or raise ValidationError naming the carrier."""
        number = normalize.clean_tracking_number(raw)
        if not normalize.tracking_number_is_valid(number, self.tracking_rule):
            raise ValidationError(f"{self.name}の伝票番号として正しくありません: {raw}")
        return number


class CityContact(models.Model):
    """Who at the city receives escalations, in order (and, if flagged, the monthly report)."""

    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="contacts"
    )
    name = models.CharField("氏名", max_length=60)
    department = models.CharField("所属", max_length=100)
    phone = models.CharField("電話番号(E.164)", max_length=16, blank=True)
    email = models.EmailField("メールアドレス", blank=True)
    escalation_order = models.PositiveSmallIntegerField("連絡順", default=1)
    # The submitted monthly report (月次報告) is also mailed here; city officials' accounts
    # receive it anyway.
    receives_monthly_report = models.BooleanField("月次報告をメールで受け取る", default=False)
    user = models.ForeignKey(
        "crm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "自治体担当者"
        ordering = ["municipality", "escalation_order"]

    def __str__(self) -> str:
        return f"{self.municipality} {self.department} {self.name}"


class UserManager(DjangoUserManager):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        # The first account on a fresh install (manage.py createsuperuser) runs the operator.
        extra_fields.setdefault("role", User.Role.OPERATOR_ADMIN)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    class Role(models.TextChoices):
        OPERATOR_ADMIN = "operator_admin", "運営管理者"
        SUPERVISOR = "supervisor", "スーパーバイザー"
        AGENT = "agent", "オペレーター"
        CITY_OFFICIAL = "city_official", "自治体職員"

    role = models.CharField("役割", max_length=20, choices=Role.choices, default=Role.AGENT)
    municipalities = models.ManyToManyField(
        Municipality, blank=True, related_name="staff", verbose_name="担当自治体"
    )
    display_name = models.CharField("表示名", max_length=60, blank=True)

    objects = UserManager()

    class Meta:
        verbose_name = verbose_name_plural = "利用者"
        constraints = [
            models.UniqueConstraint(Upper("username"), name="user_username_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def is_operator_staff(self) -> bool:
        return self.role != self.Role.CITY_OFFICIAL

    @property
    def is_operator_admin(self) -> bool:
        return self.role == self.Role.OPERATOR_ADMIN


class AuditLog(models.Model):
    """Log-ins, log-outs, failed log-ins and other security events (作業ログ)."""

    class Action(models.TextChoices):
        LOGIN = "login", "ログイン"
        LOGOUT = "logout", "ログアウト"
        LOGIN_FAILED = "login_failed", "ログイン失敗"
        IDLE_TIMEOUT = "idle_timeout", "無操作タイムアウト"
        OTP_FAILED = "otp_failed", "二要素認証失敗"
        OTP_ENROLLED = "otp_enrolled", "二要素認証登録"
        LOGIN_LOCKED = "login_locked", "ログインロック"
        LOGIN_UNLOCKED = "login_unlocked", "ログインロック解除"
        OTP_LINK_ISSUED = "otp_link_issued", "二要素認証登録リンク発行"
        OTP_RESET = "otp_reset", "二要素認証リセット"
        PRESENCE_RESET = "presence_reset", "在席状態の強制変更"
        CONFIG_CHANGED = "config_changed", "設定変更"
        PASSWORD_CHANGED = "password_changed", "パスワード変更"
        LOGOUT_EVERYWHERE = "logout_all", "全端末からログアウト"
        HANDOVER_EXPORT = "handover_export", "引継ぎデータ出力"
        HANDOVER_DOWNLOAD = "handover_download", "引継ぎデータのダウンロード"
        HANDOVER_DELETE = "handover_delete", "引継ぎ後のデータ削除"
        HANDOVER_OVERRIDE = "handover_override", "出力なしのデータ削除（承認による）"
        HANDOVER_CERTIFICATE = "handover_certificate", "削除証明書のダウンロード"
        RETENTION_CHANGE = "retention_change", "保存期間の変更"
        RETENTION_PURGE = "retention_purge", "保存期間を過ぎたデータの削除"
        CORE_CHANGE_RETRY = "core_change_retry", "基幹システム変更（保留）の再処理"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "監査ログ"
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username} {self.action}"


class EnrolmentLink(models.Model):
    """A one-time link to enrol an authenticator app, issued by an operator admin.

    A password alone must not be enough to claim an account's second factor, so enrolment needs
    this link too. Only a hash of its token is kept; the link is shown once, expires, is used up
    by a completed enrolment, and is superseded by a newer link for the same user.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="enrolment_links")
    token_hash = models.CharField(max_length=64, unique=True)  # SHA-256 hex
    issued_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The authenticator key shown for this link: a key shown before (or for another link) is
    # never the one confirmed.
    device = models.ForeignKey(
        "otp_totp.TOTPDevice", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = verbose_name_plural = "二要素認証登録リンク"
        indexes = [models.Index(fields=["user", "-created_at"], name="enrolmentlink_user_recent")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.created_at:%Y-%m-%d %H:%M}"


class PersonalDataAccess(models.Model):
    """Who looked at or exported whose personal data, when and from where (閲覧・持出し記録)."""

    class Action(models.TextChoices):
        VIEW = "view", "閲覧"
        EXPORT = "export", "出力"
        API = "api", "API参照"

    at = models.DateTimeField(auto_now_add=True)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    municipality = models.ForeignKey(
        Municipality, null=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    record_type = models.CharField("対象", max_length=30)  # "donor", "ticket", "donations.csv" …
    record_id = models.CharField("対象ID", max_length=40, blank=True)
    path = models.CharField(max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "個人情報アクセス記録"
        indexes = [
            models.Index(fields=["-at"], name="pda_recent"),
            models.Index(fields=["record_type", "record_id"], name="pda_record"),
            models.Index(fields=["user", "-at"], name="pda_user_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.user_id} {self.action} {self.record_type}:{self.record_id}"
