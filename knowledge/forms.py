from __future__ import annotations

from django import forms

from crm.models import Municipality
from knowledge import macros
from knowledge.models import CannedReply

# The fields of a 定型文's actions (a macro), shown only on the 定型文 form.
ACTION_FIELDS = (
    "action_status",
    "action_set_category",
    "action_severity",
    "action_assignee",
    "action_note",
)


class KnowledgeForm(forms.Form):
    municipality = forms.ModelChoiceField(
        label="自治体",
        queryset=Municipality.objects.none(),
        required=False,
        empty_label="共通（全自治体）",
    )
    title = forms.CharField(label="件名", max_length=200)
    keywords = forms.CharField(label="検索語", max_length=300, required=False)
    category_code = forms.SlugField(label="分類コード", max_length=40, required=False)
    body = forms.CharField(label="本文", widget=forms.Textarea(attrs={"rows": 12}))
    sort_order = forms.IntegerField(label="表示順", min_value=0, max_value=32767, initial=100)
    is_active = forms.BooleanField(label="有効", required=False, initial=True)

    def __init__(self, *args, municipalities=None, **kwargs):
        super().__init__(*args, **kwargs)
        if municipalities is not None:
            self.fields["municipality"].queryset = municipalities


class CannedReplyForm(KnowledgeForm):
    """A 定型文, with what it also does to the ticket when an agent applies it."""

    action_status = forms.TypedChoiceField(
        label="状態を変更", required=False, coerce=int, empty_value=None
    )
    action_set_category = forms.BooleanField(label="分類コードの分類を問合せに設定", required=False)
    action_severity = forms.ChoiceField(label="重要度を変更", required=False)
    action_assignee = forms.ChoiceField(
        label="担当者", required=False, choices=CannedReply.Assignee.choices
    )
    action_note = forms.CharField(
        label="内部メモを追加",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="適用したとき、返信と一緒に内部メモとして記録します（変数も使えます）。",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action_status"].choices = [("", "変更しない"), *macros.STATUS_CHOICES]
        self.fields["action_severity"].choices = [("", "変更しない"), *macros.SEVERITY_CHOICES]

    def clean(self):
        data = super().clean()
        if data.get("action_set_category") and not data.get("category_code"):
            self.add_error("category_code", "分類を設定するには分類コードを入力してください。")
        return data
