"""Fill {寄附者名}-style variables in canned replies.

Canned replies are written by staff and may contain anything, so they are never evaluated as a
template: a single pass replaces known ``{名前}`` placeholders with plain values and leaves every
other character as written ({{ settings.SECRET_KEY }}, {% load %}, unknown names). Values are
plain text too; HTML escaping happens where the text is shown (Django autoescape, textContent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crm import normalize

# name → what it means (shown to editors next to the form).
VARIABLES: dict[str, str] = {
    "寄附者名": "寄附者の氏名",
    "自治体名": "自治体の名称",
    "応答名": "電話の応答名（〇〇市ふるさと納税コールセンター）",
    "問合せ番号": "この問合せの番号",
    "受付番号": "ポータルの受付番号（なければ外部管理番号）",
    "外部管理番号": "寄附管理システムの番号",
    "寄附日": "寄附の申込日",
    "寄附金額": "寄附金額（¥10,000）",
    "返礼品名": "返礼品の名称",
    "発送日": "発送日",
    "配送業者": "配送業者名",
    "伝票番号": "配送伝票番号",
    "受領証明書発行日": "寄附金受領証明書の発行日",
    "担当者名": "対応している担当者の表示名",
}

_PLACEHOLDER = re.compile(r"\{([^{}\s]{1,20})\}")
_WEEKDAYS = "月火水木金土日"


@dataclass
class Rendered:
    text: str
    used: list[str] = field(default_factory=list)
    # Known variables with no value for this ticket: left as {名前} for the agent to fill in.
    missing: list[str] = field(default_factory=list)


# The one wording of the refusal: the server's form error and the page's Ctrl+Enter block.
UNFILLED_MESSAGE = (
    "未入力の変数があります: {names}。実際の内容に書き換えるか削除してから登録してください。"
)


def unfilled_variables(text: str) -> list[str]:
    """Known variables still written as {名前} in ``text``, in order of appearance.

    A 定型文 inserted on a ticket that lacks the record keeps its placeholders; sent as is, the
    requester would read 「{伝票番号}」. Unknown names in braces are the agent's own text.
    """
    names: list[str] = []
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1)
        if name in VARIABLES and name not in names:
            names.append(name)
    return names


def unfilled_message(names: list[str]) -> str:
    return UNFILLED_MESSAGE.replace("{names}", " ".join(f"{{{name}}}" for name in names))


def render_text(body: str, values: Mapping[str, str]) -> Rendered:
    result = Rendered(text="")

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in VARIABLES:
            return match.group(0)
        value = values.get(name, "")
        if not value:
            if name not in result.missing:
                result.missing.append(name)
            return match.group(0)
        if name not in result.used:
            result.used.append(name)
        return value

    result.text = _PLACEHOLDER.sub(substitute, body)
    return result


def _date(value: Any) -> str:
    if not value:
        return ""
    from django.utils import timezone

    if hasattr(value, "hour"):
        value = timezone.localtime(value).date()
    return f"{value.year}年{value.month}月{value.day}日({_WEEKDAYS[value.weekday()]})"


def variables_for(
    *,
    municipality: Any = None,
    donor: Any = None,
    donation: Any = None,
    shipment: Any = None,
    ticket_number: int | str | None = None,
    agent: Any = None,
) -> dict[str, str]:
    """The values the records at hand provide; callers pass the records already fetched."""
    if shipment is not None and donation is None:
        donation = shipment.donation
    if donation is not None and donor is None:
        donor = donation.donor
    if municipality is None:
        for record in (donor, donation, shipment):
            if record is not None:
                municipality = record.municipality
                break
    values: dict[str, str] = {}
    if municipality is not None:
        values["自治体名"] = municipality.name
        values["応答名"] = municipality.answer_name
    if donor is not None:
        values["寄附者名"] = donor.name
    if ticket_number:
        values["問合せ番号"] = str(ticket_number)
    if donation is not None:
        values["受付番号"] = donation.portal_order_number or donation.external_id
        values["外部管理番号"] = donation.external_id
        values["寄附日"] = _date(donation.donated_at)
        values["寄附金額"] = f"¥{donation.amount:,}"
        values["受領証明書発行日"] = _date(donation.receipt_issued_on)
    if shipment is not None:
        values["返礼品名"] = shipment.gift_item.name
        values["発送日"] = _date(shipment.shipped_on)
        values["配送業者"] = shipment.carrier.name if shipment.carrier_id else ""
        values["伝票番号"] = normalize.format_tracking_number(shipment.tracking_number)
    if agent is not None:
        values["担当者名"] = str(agent)
    return {k: v for k, v in values.items() if v}
