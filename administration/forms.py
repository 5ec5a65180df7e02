"""Forms of the operator admin's pages: parsing and field checks only; writes are services'."""

from __future__ import annotations

import datetime

from django import forms

from crm import normalize
from crm.models import Carrier, CityContact, Municipality, Provider, User
from telephony.models import WeeklyHours
from tickets.mail.models import Mailbox

PRESET_CHOICES = [
    ("weekdays", "平日のみ（土日祝休み）"),
    ("weekdays_with_year_end_peak", "平日＋年末年始繁忙期（12/29〜1/3 延長）"),
    ("every_day_except_new_year", "年中無休（1/1〜1/3 を除く）"),
    ("every_day_including_holidays", "毎日（土日祝も受付）"),
]
REQUESTER_TYPES = [
    ("donor", "寄附者"),
    ("provider", "事業者"),
    ("city", "自治体"),
    ("other", "その他"),
]


class DateInput(forms.DateInput):
    input_type = "date"


class TimeInput(forms.TimeInput):
    input_type = "time"


class MunicipalityForm(forms.ModelForm):
    class Meta:
        model = Municipality
        fields = [
            "code",
            "name",
            "name_kana",
            "prefecture",
            "answer_name",
            "residents_excluded",
            "contract_start",
            "contract_end",
            "city_may_play_recordings",
        ]
        widgets = {"contract_start": DateInput(), "contract_end": DateInput()}
        help_texts = {
            "code": "全国地方公共団体コード6桁（6桁目は検査数字）。例: 小樽市 012033",
            "answer_name": "電話に出るときの名乗り。例: 小樽市ふるさと納税コールセンター",
        }

    def clean_code(self) -> str:
        # Typed in Japanese input mode, digits come full-width: the stored code is ASCII.
        return normalize.nfkc(self.cleaned_data["code"]).strip()

    def clean(self):
        data = super().clean()
        start, end = data.get("contract_start"), data.get("contract_end")
        if start and end and end < start:
            self.add_error("contract_end", "契約終了日が契約開始日より前です。")
        return data


class PhoneNumberForm(forms.Form):
    number = forms.CharField(
        label="電話番号", max_length=40, help_text="例: 0134-32-4111 / +81134324111"
    )
    label = forms.CharField(label="用途", max_length=40, required=False)


class InboundAddressForm(forms.Form):
    address = forms.EmailField(label="受信アドレス")


class MailboxForm(forms.ModelForm):
    password = forms.CharField(
        label="パスワード",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="空欄なら変更しません。",
    )

    class Meta:
        model = Mailbox
        fields = [
            "protocol",
            "host",
            "port",
            "use_ssl",
            "username",
            "folder",
            "outbound_charset",
            "display_name",
            "plus_addressing",
            "active",
        ]


class MailSettingsForm(forms.Form):
    acknowledgement_enabled = forms.BooleanField(label="受付自動返信を送る", required=False)
    acknowledgement_subject = forms.CharField(label="受付自動返信の件名", max_length=200)
    acknowledgement_body = forms.CharField(label="受付自動返信の本文", widget=forms.Textarea)


class PhoneSettingsForm(forms.Form):
    greeting = forms.CharField(
        label="応答メッセージ",
        max_length=200,
        required=False,
        help_text="空欄なら自治体の応答名から作ります。",
    )
    hold_message = forms.CharField(label="保留メッセージ", max_length=200)
    max_queue_wait_seconds = forms.IntegerField(label="最大待ち時間（秒）", min_value=0)
    ring_timeout_seconds = forms.IntegerField(label="呼出時間（秒）", min_value=5, max_value=120)
    record_calls = forms.BooleanField(label="通話を録音", required=False)


class IvrOptionsForm(forms.Form):
    """Up to five menu options: the digit pressed, what is said, and who the caller is."""

    def __init__(self, *args, options: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        options = options or {}
        for digit in "12345":
            current = options.get(digit, {})
            self.fields[f"label_{digit}"] = forms.CharField(
                label=f"{digit}番の案内",
                max_length=60,
                required=False,
                initial=current.get("label"),
            )
            self.fields[f"type_{digit}"] = forms.ChoiceField(
                label=f"{digit}番の問合せ者",
                choices=REQUESTER_TYPES,
                initial=current.get("requester_type", "other"),
            )

    def options(self) -> dict[str, dict[str, str]]:
        return {
            digit: {
                "label": self.cleaned_data[f"label_{digit}"],
                "requester_type": self.cleaned_data[f"type_{digit}"],
            }
            for digit in "12345"
            if self.cleaned_data.get(f"label_{digit}")
        }

    def clean(self):
        data = super().clean()
        if not any(data.get(f"label_{d}") for d in "12345"):
            raise forms.ValidationError("メニューを1つ以上入力してください。")
        return data


class PresetForm(forms.Form):
    preset = forms.ChoiceField(label="受付時間の型", choices=PRESET_CHOICES)
    opens = forms.TimeField(label="開始", initial=datetime.time(9), widget=TimeInput())
    closes = forms.TimeField(label="終了", initial=datetime.time(17), widget=TimeInput())


class WeeklyHoursForm(forms.Form):
    open_on_holidays = forms.BooleanField(label="祝日も受付", required=False)

    def __init__(self, *args, weekly: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        weekly = weekly or {}
        for day, name in WeeklyHours.WEEKDAYS:
            row = weekly.get(day)
            self.fields[f"opens_{day}"] = forms.TimeField(
                label=f"{name} 開始",
                required=False,
                widget=TimeInput(),
                initial=row.opens if row else None,
            )
            self.fields[f"closes_{day}"] = forms.TimeField(
                label=f"{name} 終了",
                required=False,
                widget=TimeInput(),
                initial=row.closes if row else None,
            )

    def hours(self) -> dict[int, tuple[datetime.time, datetime.time] | None]:
        return {
            day: (
                (self.cleaned_data[f"opens_{day}"], self.cleaned_data[f"closes_{day}"])
                if self.cleaned_data.get(f"opens_{day}") and self.cleaned_data.get(f"closes_{day}")
                else None
            )
            for day, _ in WeeklyHours.WEEKDAYS
        }

    def clean(self):
        data = super().clean()
        for day, name in WeeklyHours.WEEKDAYS:
            opens, closes = data.get(f"opens_{day}"), data.get(f"closes_{day}")
            if bool(opens) != bool(closes):
                self.add_error(f"closes_{day}", f"{name}曜日は開始と終了の両方を入力してください。")
            elif opens and closes and not opens < closes:
                self.add_error(f"closes_{day}", f"{name}曜日の終了は開始より後にしてください。")
        return data


class CalendarExceptionForm(forms.Form):
    label = forms.CharField(label="名称", max_length=60)
    start_date = forms.DateField(label="開始日", widget=DateInput())
    end_date = forms.DateField(label="終了日", widget=DateInput())
    closed = forms.BooleanField(label="休業", required=False)
    opens = forms.TimeField(label="開始", required=False, widget=TimeInput())
    closes = forms.TimeField(label="終了", required=False, widget=TimeInput())
    every_year = forms.BooleanField(label="毎年", required=False)


class CityContactForm(forms.ModelForm):
    class Meta:
        model = CityContact
        fields = [
            "name",
            "department",
            "phone",
            "email",
            "escalation_order",
            "receives_monthly_report",
        ]

    def clean(self):
        data = super().clean()
        if data.get("receives_monthly_report") and not data.get("email"):
            self.add_error("email", "月次報告を受け取るにはメールアドレスが必要です。")
        return data


class ProviderForm(forms.ModelForm):
    class Meta:
        model = Provider
        fields = ["code", "name", "name_kana", "phone", "email", "contact_person"]


class CarrierForm(forms.ModelForm):
    class Meta:
        model = Carrier
        fields = ["code", "name", "short_name", "tracking_url_template", "tracking_rule"]


class OnboardingForm(MunicipalityForm):
    """One page, in the order the work is done: municipality → number → mail → calendar →
    contacts → staff."""

    phone_number = forms.CharField(label="着信番号", max_length=40)
    phone_label = forms.CharField(label="番号の用途", max_length=40, required=False)
    inbound_address = forms.EmailField(label="受信メールアドレス")
    calendar_preset = forms.ChoiceField(label="受付時間の型", choices=PRESET_CHOICES)
    opens = forms.TimeField(label="開始", initial=datetime.time(9), widget=TimeInput())
    closes = forms.TimeField(label="終了", initial=datetime.time(17), widget=TimeInput())
    contact_name = forms.CharField(label="担当者氏名", max_length=60, required=False)
    contact_department = forms.CharField(label="所属", max_length=100, required=False)
    contact_phone = forms.CharField(label="電話番号", max_length=40, required=False)
    contact_email = forms.EmailField(label="メールアドレス", required=False)
    staff = forms.ModelMultipleChoiceField(
        label="担当するスタッフ",
        queryset=User.objects.filter(
            is_active=True, role__in=[User.Role.AGENT, User.Role.SUPERVISOR]
        ).order_by("username"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def clean(self):
        data = super().clean()
        if data.get("contact_name") and not data.get("contact_department"):
            self.add_error("contact_department", "担当者の所属を入力してください。")
        opens, closes = data.get("opens"), data.get("closes")
        if opens and closes and not opens < closes:
            self.add_error("closes", "終了時刻は開始時刻より後にしてください。")
        return data

    STEPS = (
        ("自治体", MunicipalityForm.Meta.fields),
        ("着信番号", ["phone_number", "phone_label"]),
        ("受信メールアドレス", ["inbound_address"]),
        ("受付時間", ["calendar_preset", "opens", "closes"]),
        (
            "自治体担当者（エスカレーション先・任意）",
            ["contact_name", "contact_department", "contact_phone", "contact_email"],
        ),
        ("担当スタッフ", ["staff"]),
    )

    def steps(self):
        return [(legend, [self[name] for name in names]) for legend, names in self.STEPS]

    def contacts(self) -> list[dict]:
        data = self.cleaned_data
        if not data.get("contact_name"):
            return []
        return [
            {
                "name": data["contact_name"],
                "department": data["contact_department"],
                "phone": data.get("contact_phone", ""),
                "email": data.get("contact_email", ""),
            }
        ]


def call_taking_staff():
    return User.objects.filter(
        is_active=True, role__in=[User.Role.AGENT, User.Role.SUPERVISOR]
    ).order_by("username")


class MunicipalityStaffForm(forms.Form):
    staff = forms.ModelMultipleChoiceField(
        label="担当するオペレーター・スーパーバイザー",
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["staff"].queryset = call_taking_staff()


class StaffForm(forms.Form):
    username = forms.CharField(label="利用者名", max_length=150)
    display_name = forms.CharField(label="表示名", max_length=60, required=False)
    email = forms.EmailField(label="メールアドレス", required=False)
    role = forms.ChoiceField(label="役割", choices=User.Role.choices)
    municipalities = forms.ModelMultipleChoiceField(
        label="担当自治体",
        queryset=Municipality.objects.order_by("code"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class StaffEditForm(StaffForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].disabled = True
        self.fields["username"].required = False


class StaffCsvForm(forms.Form):
    file = forms.FileField(label="CSVファイル（UTF-8 または CP932）")


class SuspendForm(forms.Form):
    reason = forms.CharField(label="理由", max_length=200, required=False)


class PasswordChangeForm(forms.Form):
    old_password = forms.CharField(label="現在のパスワード", widget=forms.PasswordInput)
    new_password = forms.CharField(label="新しいパスワード", widget=forms.PasswordInput)
    new_password_again = forms.CharField(
        label="新しいパスワード（確認）", widget=forms.PasswordInput
    )

    def clean(self):
        data = super().clean()
        if data.get("new_password") != data.get("new_password_again"):
            self.add_error("new_password_again", "確認用のパスワードが一致しません。")
        return data
