"""Short, call-length forms for the agent console."""

from __future__ import annotations

from django import forms

from donations_sync.models import Donation, Shipment
from donations_sync.presenters import tracking_warning
from knowledge.render import unfilled_message, unfilled_variables
from tickets.models import Category, Channel, RequesterType, Severity, Status


class TicketCreateForm(forms.Form):
    """What an agent types while the caller is on the line; links come prefilled."""

    channel = forms.ChoiceField(label="受付経路", choices=Channel.choices, initial=Channel.PHONE)
    requester_type = forms.ChoiceField(
        label="問合せ者", choices=RequesterType.choices, initial=RequesterType.DONOR
    )
    category = forms.ModelChoiceField(
        label="分類",
        queryset=Category.objects.filter(active=True),
        to_field_name="code",
        required=False,
        empty_label="（未分類）",
    )
    severity = forms.ChoiceField(label="重要度", choices=Severity.choices, initial=Severity.NORMAL)
    title = forms.CharField(
        label="件名", max_length=200, widget=forms.TextInput(attrs={"autofocus": True})
    )
    description = forms.CharField(
        label="内容", widget=forms.Textarea(attrs={"rows": 5}), required=False
    )
    donations = forms.ModelMultipleChoiceField(
        label="関連する寄附",
        queryset=Donation.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    shipments = forms.ModelMultipleChoiceField(
        label="関連する配送",
        queryset=Shipment.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, donations=None, shipments=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the donor's own records (already scoped by the view) can be linked.
        if donations is not None:
            self.fields["donations"].queryset = donations
            self.fields["donations"].label_from_instance = lambda d: (
                f"{d.portal_order_number or d.external_id}（{d.get_portal_display()}・¥{d.amount:,}）"
            )
        if shipments is not None:
            self.fields["shipments"].queryset = shipments
            self.fields["shipments"].label_from_instance = lambda s: (
                f"{s.gift_item.name} {s.delivery_number}回目"
                + (f"（伝票 {s.tracking_number}）" if s.tracking_number else "")
                + (f"・{warning}" if (warning := tracking_warning(s)) else "")
            )


class ReplyForm(forms.Form):
    KIND_REPLY = "reply"
    KIND_NOTE = "note"

    kind = forms.ChoiceField(
        choices=[(KIND_REPLY, "返信"), (KIND_NOTE, "内部メモ")],
        initial=KIND_NOTE,
        widget=forms.RadioSelect,
        label="種類",
    )
    body = forms.CharField(
        label="本文",
        widget=forms.Textarea(attrs={"rows": 8}),
        error_messages={"required": "本文を入力してください。"},
    )
    # Internal notes are hidden from the city unless the agent chooses to share them.
    share_with_city = forms.BooleanField(label="市にも見せる", required=False)

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        names = unfilled_variables(body)
        if names:
            raise forms.ValidationError(unfilled_message(names))
        return body


# Where a ticket may go from each state. 重複 is reached only by merging, so it is not offered.
STATUS_FLOW: dict[int, tuple[int, ...]] = {
    Status.OPEN: (Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED),
    Status.REOPENED: (Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED),
    Status.IN_PROGRESS: (Status.RESOLVED, Status.CLOSED),
    Status.RESOLVED: (Status.CLOSED, Status.REOPENED),
    Status.CLOSED: (Status.REOPENED,),
    Status.DUPLICATE: (),
}


class StatusForm(forms.Form):
    status = forms.TypedChoiceField(label="状態", choices=(), coerce=int)
    comment = forms.CharField(label="コメント", required=False, max_length=2000)

    def __init__(self, *args, current: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [
            (value, Status(value).label) for value in STATUS_FLOW.get(current, ())
        ]


class ClassifyForm(forms.Form):
    category = forms.ModelChoiceField(
        label="分類",
        queryset=Category.objects.filter(active=True),
        to_field_name="code",
        required=False,
        empty_label="（未分類）",
    )
    severity = forms.ChoiceField(label="重要度", choices=Severity.choices)


class SlaTargetForm(forms.Form):
    """Targets in business hours (営業時間): 1.5 is an hour and a half of opening hours."""

    municipality = forms.TypedChoiceField(label="自治体", choices=(), coerce=int)
    category = forms.ModelChoiceField(
        label="分類",
        queryset=Category.objects.filter(active=True),
        to_field_name="code",
        required=False,
        empty_label="（既定：分類なし・その他すべて）",
    )
    first_response_hours = forms.DecimalField(
        label="初回回答（営業時間）", min_value=0, max_value=2000, decimal_places=2
    )
    resolution_hours = forms.DecimalField(
        label="解決（営業時間）", min_value=0, max_value=10000, decimal_places=2
    )

    def __init__(self, *args, municipalities, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["municipality"].choices = [(m.id, m.name) for m in municipalities]

    def clean(self):
        data = super().clean()
        first, resolution = data.get("first_response_hours"), data.get("resolution_hours")
        if first is not None and resolution is not None and resolution < first:
            raise forms.ValidationError("解決の目標は初回回答の目標以上にしてください。")
        return data


class SavedViewForm(forms.Form):
    name = forms.CharField(label="この条件を保存（名前）", max_length=60)
    query = forms.CharField(max_length=1000, required=False, widget=forms.HiddenInput)


class ComposerForm(ReplyForm):
    """The ticket page's one composer: a reply or note and the ticket's fields in one submit.

    The selects come with the ticket's current values, so what the agent leaves alone changes
    nothing; ``then=resolve`` is 「送信して解決」.
    """

    ACTION_SEND = "send"
    ACTION_CHANGES = "changes"  # 変更のみ保存: the text stays in the draft

    status = forms.TypedChoiceField(label="状態", choices=(), coerce=int)
    category = forms.ModelChoiceField(
        label="分類",
        queryset=Category.objects.filter(active=True),
        to_field_name="code",
        required=False,
        empty_label="（未分類）",
    )
    severity = forms.ChoiceField(label="重要度", choices=Severity.choices)
    assignee = forms.ModelChoiceField(
        label="担当者", queryset=None, required=False, empty_label="（未割当）"
    )
    macro = forms.IntegerField(required=False, widget=forms.HiddenInput)
    then = forms.CharField(required=False)
    action = forms.CharField(required=False)

    def __init__(self, *args, current: int, assignees, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["body"].required = False
        self.fields["body"].widget.attrs.update({"rows": 5})
        self.fields["status"].choices = [
            (value, Status(value).label) for value in (current, *STATUS_FLOW.get(current, ()))
        ]
        self.fields["assignee"].queryset = assignees
        # Single-key shortcuts (shortcuts.js): C 分類, V 重要度, A 担当者.
        for name, key in (("category", "c"), ("severity", "v"), ("assignee", "a")):
            self.fields[name].widget.attrs.update({"data-shortcut": key, "id": f"composer-{name}"})

    @property
    def resolve(self) -> bool:
        return self.cleaned_data.get("then") == "resolve"

    @property
    def changes_only(self) -> bool:
        return self.cleaned_data.get("action") == self.ACTION_CHANGES


class RetitleForm(forms.Form):
    title = forms.CharField(label="件名", max_length=200)
