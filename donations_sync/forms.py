"""Forms of the import pages: upload, re-run, the column mapping editor, the 要確認 outcome."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from donations_sync.callback_services import OUTCOMES
from donations_sync.models import ImportMapping, ImportStyle

ENCODINGS = [("", "自動判定"), ("cp932", "CP932（Shift_JIS）"), ("utf-8", "UTF-8")]

# Our fields, block by block, with the words the mapping page shows for them.
FIELD_LABELS: dict[str, list[tuple[str, str]]] = {
    "donor": [
        ("donor_number", "寄附者番号"),
        ("name", "氏名"),
        ("kana", "フリガナ"),
        ("postal_code", "郵便番号"),
        ("prefecture", "都道府県"),
        ("address", "住所"),
        ("building", "建物名"),
        ("phone", "電話番号"),
        ("email", "メールアドレス"),
    ],
    "donation": [
        ("portal_order_number", "受付番号・受注番号"),
        ("external_id", "外部管理番号"),
        ("donated_at", "申込日"),
        ("paid_on", "入金日"),
        ("amount", "寄附金額"),
        ("payment_method", "払込方法"),
        ("gift_declined", "返礼品辞退"),
        ("one_stop_requested", "ワンストップ特例 希望"),
        ("one_stop_received_on", "ワンストップ特例 申請書受付日"),
        ("receipt_issued_on", "受領証明書 発行日"),
        ("thank_you_letter_on", "お礼状 出力日"),
        ("note", "備考"),
    ],
    "gift": [
        ("code", "返礼品コード"),
        ("name", "返礼品名"),
        ("code_and_name", "返礼品（[コード] 名称）"),
        ("desired_date", "配達希望日"),
        ("desired_weekday", "配達希望曜日"),
        ("desired_time_slot", "配達希望時間帯"),
        ("carrier", "配送会社"),
        ("tracking_number", "伝票番号"),
        ("shipped_on", "発送日"),
        ("ship_to_name", "送り先 氏名"),
        ("ship_to_kana", "送り先 フリガナ"),
        ("ship_to_postal_code", "送り先 郵便番号"),
        ("ship_to_address", "送り先 住所"),
        ("ship_to_phone", "送り先 電話番号"),
    ],
}
BLOCK_LABELS = {"donor": "寄附者", "donation": "寄附", "gift": "返礼品・配送"}
# A required field's columns must be in the file's header. Gift fields repeat per group (返礼品1_,
# 返礼品2_ …) and a donation may have none, so they cannot be required.
REQUIRABLE = ("donor", "donation")
_SEPARATORS = re.compile(r"[,，\r\n]+")


def _mapping_choices(municipality_id: int | None, style: str | None, user) -> Any:
    rows = ImportMapping.objects.visible_to(user).order_by("name")
    if municipality_id is not None:
        rows = rows.filter(municipality_id=municipality_id)
    if style:
        rows = rows.filter(style=style)
    return rows


class UploadForm(forms.Form):
    municipality = forms.ModelChoiceField(queryset=None, label="自治体", empty_label=None)
    style = forms.ChoiceField(label="取込形式", choices=ImportStyle.choices)
    saved_mapping = forms.ModelChoiceField(
        queryset=None,
        label="列の対応表",
        required=False,
        empty_label="標準の対応表（取込形式のとおり）",
    )
    encoding = forms.ChoiceField(label="文字コード", choices=ENCODINGS, required=False)
    file = forms.FileField(label="CSVファイル")

    def __init__(self, *args: Any, municipalities: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["municipality"].queryset = municipalities
        self.fields["saved_mapping"].queryset = _mapping_choices(None, None, user).select_related(
            "municipality"
        )
        self.fields["saved_mapping"].label_from_instance = lambda m: (
            f"{m.municipality.name}：{m.name}（{m.get_style_display()}）"
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        saved = data.get("saved_mapping")
        municipality = data.get("municipality")
        if saved is not None and municipality is not None:
            if saved.municipality_id != municipality.id:
                self.add_error("saved_mapping", "選んだ自治体の対応表ではありません。")
            elif saved.style != data.get("style"):
                self.add_error("saved_mapping", "選んだ取込形式の対応表ではありません。")
        return data


class RerunForm(forms.Form):
    saved_mapping = forms.ModelChoiceField(
        queryset=None,
        label="列の対応表",
        required=False,
        empty_label="標準の対応表（取込形式のとおり）",
    )
    encoding = forms.ChoiceField(label="文字コード", choices=ENCODINGS, required=False)

    def __init__(self, *args: Any, run: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["saved_mapping"].queryset = _mapping_choices(
            run.municipality_id, run.style, user
        )


class MappingCreateForm(forms.Form):
    style = forms.ChoiceField(label="もとにする形式", choices=ImportStyle.choices)
    name = forms.CharField(label="名前", max_length=60)


def split_columns(text: str) -> str | list[str]:
    """「姓, 名」 or one name a line → a list (joined in order); one name → the name."""
    names = [name.strip() for name in _SEPARATORS.split(text or "") if name.strip()]
    return names[0] if len(names) == 1 else names


def join_columns(columns: str | list[str] | None) -> str:
    if not columns:
        return ""
    return columns if isinstance(columns, str) else ", ".join(columns)


class MappingEditForm(forms.Form):
    """One text box (source column names) and one 必須 box per field of ours."""

    name = forms.CharField(label="名前", max_length=60)

    def __init__(self, *args: Any, mapping: dict[str, Any], **kwargs: Any) -> None:
        required = set(mapping.get("required", []))
        initial = {"name": kwargs.pop("name", "")}
        for block, fields in FIELD_LABELS.items():
            for field, _ in fields:
                initial[f"{block}__{field}"] = join_columns(mapping.get(block, {}).get(field))
                if block in REQUIRABLE:
                    initial[f"{block}__{field}__required"] = field in required and (
                        field in mapping.get(block, {})
                    )
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        for block, fields in FIELD_LABELS.items():
            for field, label in fields:
                self.fields[f"{block}__{field}"] = forms.CharField(
                    label=label,
                    required=False,
                    max_length=500,
                    widget=forms.Textarea(attrs={"rows": 1, "cols": 40}),
                )
                if block in REQUIRABLE:
                    self.fields[f"{block}__{field}__required"] = forms.BooleanField(
                        label=f"{label}を必須にする", required=False
                    )

    def rows(self) -> list[dict[str, Any]]:
        """Blocks of (label, columns box, 必須 box) for the template."""
        return [
            {
                "label": BLOCK_LABELS[block],
                "block": block,
                "fields": [
                    {
                        "name": field,
                        "label": label,
                        "columns": self[f"{block}__{field}"],
                        "required": self[f"{block}__{field}__required"]
                        if block in REQUIRABLE
                        else None,
                    }
                    for field, label in fields
                ],
            }
            for block, fields in FIELD_LABELS.items()
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        columns: dict[str, Any] = {"donor": {}, "donation": {}, "gift": {}, "required": []}
        for block, fields in FIELD_LABELS.items():
            for field, label in fields:
                key = f"{block}__{field}"
                names = split_columns(data.get(key, ""))
                if data.get(f"{key}__required"):
                    if not names:
                        self.add_error(key, f"{label}は必須にしたので、列名を入れてください。")
                        continue
                    columns["required"].append(field)
                if not names:
                    continue
                listed = [names] if isinstance(names, str) else names
                if block != "gift" and any("{n}" in name for name in listed):
                    self.add_error(key, "{n}（繰り返しの番号）は返礼品の項目にだけ使えます。")
                    continue
                columns[block][field] = names
        gift = columns["gift"]
        if "code_and_name" in gift and ("code" in gift or "name" in gift):
            self.add_error(
                "gift__code_and_name",
                "返礼品（[コード] 名称）を使うときは、返礼品コードと返礼品名は空にしてください。",
            )
        numbers = ("portal_order_number", "external_id")
        if not any(n in columns["donation"] for n in numbers) and (
            "donor_number" not in columns["donor"]
        ):
            self.add_error(
                None,
                "寄附を特定する番号（受付番号・受注番号、外部管理番号、寄附者番号）のどれかに列を入れてください。",
            )
        data["columns"] = columns
        return data


class CallbackResolveForm(forms.Form):
    outcome = forms.ChoiceField(label="結果", choices=OUTCOMES)
    note = forms.CharField(label="メモ", max_length=150, required=False)
