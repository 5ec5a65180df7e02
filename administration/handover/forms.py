from __future__ import annotations

from django import forms

from administration.handover.models import RetentionPolicy


class DeletionForm(forms.Form):
    confirm_code = forms.CharField(
        label="確認のため団体コード（6桁）を入力", max_length=6, strip=True
    )
    override_reason = forms.CharField(
        label="引継ぎデータを出力せずに削除する理由（出力済みなら空欄）",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=1000,
    )


class RetentionForm(forms.ModelForm):
    class Meta:
        model = RetentionPolicy
        fields = ["recordings_days", "raw_mail_days", "attachments_days", "closed_inquiries_years"]
        help_texts = {
            "recordings_days": "空欄は期限なし（既定の設定に従う）",
        }
