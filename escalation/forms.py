from __future__ import annotations

from django import forms
from django.utils import timezone

from escalation.models import EscalationRule, Kind
from tickets.models import Category, Channel, Severity

REPORT_KINDS = [(k, label) for k, label in Kind.choices if k not in (Kind.CLUSTER, Kind.QUESTION)]


class ReportForm(forms.Form):
    mode = forms.ChoiceField(
        label="種類",
        choices=[("report", "市へ報告"), ("question", "市へ照会（回答を依頼）")],
        initial="report",
    )
    kind = forms.ChoiceField(label="報告の種別", choices=REPORT_KINDS, initial=Kind.OTHER)
    reason = forms.CharField(label="報告理由・照会内容", widget=forms.Textarea(attrs={"rows": 3}))
    proposed_response = forms.CharField(
        label="対応案", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    urgent = forms.BooleanField(label="緊急（SMSでも通知）", required=False)
    # Personal-data incidents: the 60 minutes run from first awareness, which may be earlier.
    aware_at = forms.DateTimeField(
        label="覚知日時（個人情報の事故）",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M"],
    )

    def clean_aware_at(self):
        value = self.cleaned_data.get("aware_at")
        if value is not None and value > timezone.now():
            raise forms.ValidationError("覚知日時に未来の日時は指定できません。")
        return value


class InstructionForm(forms.Form):
    body = forms.CharField(label="市の指示", widget=forms.Textarea(attrs={"rows": 3}))


class CloseForm(forms.Form):
    outcome = forms.CharField(
        label="対応結果", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class RuleForm(forms.ModelForm):
    severities = forms.MultipleChoiceField(
        label="重要度",
        choices=Severity.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    channels = forms.MultipleChoiceField(
        label="受付経路",
        choices=Channel.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    categories = forms.ModelMultipleChoiceField(
        label="分類",
        queryset=Category.objects.filter(active=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = EscalationRule
        fields = [
            "municipality",
            "name",
            "kind",
            "active",
            "categories",
            "severities",
            "channels",
            "on_open",
            "on_reclassify",
            "on_message",
            "contacts_to_notify",
            "next_contact_minutes",
            "business_hours",
            "deadline_minutes",
            "urgent",
            "voice_call",
            "notify_provider",
            "cluster_window_days",
            "cluster_min_count",
            "cluster_factor",
            "cluster_baseline_windows",
        ]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("kind") != Kind.CLUSTER:
            if not (data.get("categories") or data.get("severities") or data.get("channels")):
                raise forms.ValidationError(
                    "分類・重要度・受付経路のいずれかを指定してください（すべての問合せは報告しません）。"
                )
            if not (data.get("on_open") or data.get("on_reclassify") or data.get("on_message")):
                raise forms.ValidationError("報告する契機を一つ以上選んでください。")
        return data

    def __init__(self, *args, municipalities=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if municipalities is not None:
            self.fields["municipality"].queryset = municipalities
