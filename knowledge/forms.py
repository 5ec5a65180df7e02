from __future__ import annotations

from django import forms

from crm.models import Municipality


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
