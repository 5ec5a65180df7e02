from __future__ import annotations

from django import forms

from tickets.mail.models import TriageRule
from tickets.models import Category, Severity


class TriageRuleForm(forms.ModelForm):
    severity = forms.ChoiceField(
        label="重要度", choices=[("", "変更しない"), *Severity.choices], required=False
    )

    class Meta:
        model = TriageRule
        fields = ["name", "keywords", "category", "severity", "sort_order", "active"]
        widgets = {"keywords": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = Category.objects.filter(active=True)
        self.fields["category"].required = False
