from __future__ import annotations

from django import forms

from crm import normalize
from donations_sync.models import GiftItem, Shipment
from reshipments.models import CallbackAttempt, ReturnedItem
from reshipments.rules import Fault, Reason
from tickets.mail.models import InboundAttachment


class ReshipmentForm(forms.Form):
    original = forms.ModelChoiceField(
        label="再送する配送", queryset=Shipment.objects.none(), empty_label=None
    )
    reason = forms.ChoiceField(label="理由", choices=Reason.choices, widget=forms.RadioSelect)
    fault = forms.ChoiceField(label="原因者", choices=Fault.choices, widget=forms.RadioSelect)
    gift_item = forms.ModelChoiceField(
        label="返礼品（同一品または代品）",
        queryset=GiftItem.objects.none(),
        required=False,
        empty_label="同じ返礼品",
    )
    photos = forms.ModelMultipleChoiceField(
        label="写真（問合せの添付ファイルから）",
        queryset=InboundAttachment.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    address_mode = forms.ChoiceField(
        label="送り先",
        choices=[("same", "前回と同じ送り先"), ("corrected", "訂正した送り先")],
        initial="same",
        widget=forms.RadioSelect,
    )
    ship_to_name = forms.CharField(label="送り先氏名", max_length=80, required=False)
    ship_to_postal_code = forms.CharField(label="郵便番号", max_length=12, required=False)
    ship_to_address = forms.CharField(label="住所", max_length=300, required=False)
    ship_to_phone = forms.CharField(label="電話番号", max_length=20, required=False)
    desired_date = forms.DateField(
        label="配達希望日", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    desired_time_slot = forms.ChoiceField(
        label="配達希望時間帯", choices=Shipment.TimeSlot.choices, required=False
    )
    gift_cost = forms.IntegerField(label="返礼品代（円）", min_value=0, initial=0)
    shipping_cost = forms.IntegerField(label="送料（円）", min_value=0, initial=0)
    note = forms.CharField(label="備考", required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, shipments, gift_items, attachments, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["original"].queryset = shipments
        self.fields["gift_item"].queryset = gift_items
        self.fields["photos"].queryset = attachments
        self.fields["original"].label_from_instance = lambda s: (
            f"{s.gift_item.name}（{s.get_status_display()}"
            f"{'・' + s.tracking_number if s.tracking_number else ''}）"
        )
        self.fields["photos"].label_from_instance = lambda a: a.filename

    def clean(self):
        data = super().clean()
        if data.get("address_mode") == "corrected":
            postal = normalize.normalize_postal_code(data.get("ship_to_postal_code") or "")
            if not postal:
                self.add_error("ship_to_postal_code", "郵便番号を7桁で入力してください。")
            data["ship_to_postal_code"] = postal
            for name in ("ship_to_name", "ship_to_address"):
                if not (data.get(name) or "").strip():
                    self.add_error(name, "訂正した送り先を入力してください。")
            phone = data.get("ship_to_phone") or ""
            if phone:
                e164 = normalize.normalize_phone(phone)
                if not e164:
                    self.add_error("ship_to_phone", "電話番号が正しくありません。")
                data["ship_to_phone"] = e164 or ""
        return data


class DecisionForm(forms.Form):
    comment = forms.CharField(
        label="コメント", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class SettingsForm(forms.Form):
    city_approval_required = forms.BooleanField(label="再送に市の承認が必要", required=False)


class ReturnedItemForm(forms.Form):
    number = forms.CharField(label="受付番号・外部管理番号", max_length=40)
    kind = forms.ChoiceField(label="返送物", choices=ReturnedItem.Kind.choices)
    returned_on = forms.DateField(label="返送日", widget=forms.DateInput(attrs={"type": "date"}))
    tracking_number = forms.CharField(
        label="伝票番号（返礼品の場合）", max_length=30, required=False
    )
    note = forms.CharField(label="備考", required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ReturnedImportForm(forms.Form):
    file = forms.FileField(label="CSVファイル")


class AttemptForm(forms.Form):
    outcome = forms.ChoiceField(label="結果", choices=CallbackAttempt.Outcome.choices)
    note = forms.CharField(label="メモ", max_length=300, required=False)
    postal_code = forms.CharField(label="確認した郵便番号", max_length=12, required=False)
    address = forms.CharField(label="確認した住所", max_length=300, required=False)

    def clean(self):
        data = super().clean()
        if data.get("outcome") == CallbackAttempt.Outcome.CONFIRMED:
            postal = normalize.normalize_postal_code(data.get("postal_code") or "")
            if not postal:
                self.add_error("postal_code", "郵便番号を7桁で入力してください。")
            if not (data.get("address") or "").strip():
                self.add_error("address", "確認した住所を入力してください。")
            data["postal_code"] = postal
        return data
