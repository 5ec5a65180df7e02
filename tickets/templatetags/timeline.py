"""Words for the audit rows of the ticket timeline."""

from django import template

register = template.Library()

# TicketChange.field holds the field's code name; agents and city staff read Japanese.
CHANGE_FIELD_LABELS = {
    "status": "状態",
    "severity": "重要度",
    "category": "分類",
    "assigned_to": "担当者",
    "donor": "寄附者",
    "donations": "寄附",
    "shipments": "配送",
    "provider": "返礼品提供事業者",
    "merged_to": "統合先",
    "merged_from": "統合元",
    "title": "件名",
}


@register.filter
def change_field_label(field: str) -> str:
    return CHANGE_FIELD_LABELS.get(field, field)
