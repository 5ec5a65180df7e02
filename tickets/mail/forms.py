from __future__ import annotations

from django import forms

from tickets.mail.models import MunicipalityMailSettings, TriageRule
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


class MailSettingsForm(forms.ModelForm):
    class Meta:
        model = MunicipalityMailSettings
        fields = ["acknowledgement_enabled", "acknowledgement_subject", "acknowledgement_body"]
        widgets = {"acknowledgement_body": forms.Textarea(attrs={"rows": 6})}
        help_texts = {
            "acknowledgement_body": "{subject}（件名）、{ticket_id}（受付番号）、{municipality}（自治体名）が使えます。",
        }
