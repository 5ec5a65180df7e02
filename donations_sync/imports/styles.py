"""Column mappings: which source column feeds which of our fields.

A mapping is plain data (JSON-able) so a municipality can save an edited copy of a preset when
its system's export differs. Shape::

    {
        "style": "choice",            # preset it derives from
        "portal": "choice",           # donations_sync.models.Portal value
        "donor":    {field: column},  # column: a name, or a list of names joined in order
        "donation": {field: column},
        "gift":     {field: column},  # "{n}" in a name marks a repeated group (返礼品1_, 返礼品2_ ...);
                                      # a gift field without "{n}" applies to every group
        "required": [field, ...],     # these fields' columns must be in the header
        "one_row_per_item": bool,     # consecutive rows with the same order number are one
                                      # donation, one gift item per row (楽天)
    }

Fields: donor — donor_number, name, kana, postal_code, prefecture, address, building, phone,
email; donation — portal_order_number, external_id, donated_at, paid_on, amount,
payment_method, gift_declined, one_stop_requested, one_stop_received_on, receipt_issued_on,
thank_you_letter_on, note; gift — code, name, code_and_name ("[code] name"), desired_date,
desired_weekday, desired_time_slot, carrier, tracking_number, shipped_on, ship_to_name,
ship_to_kana, ship_to_postal_code, ship_to_address, ship_to_phone.
"""

from __future__ import annotations

from typing import Any

Mapping = dict[str, Any]

CHOICE: Mapping = {
    "style": "choice",
    "portal": "choice",
    "donor": {
        "donor_number": "寄附者番号",
        "name": "氏名",
        "kana": "フリガナ",
        "postal_code": "〒",
        "prefecture": "都道府県",
        "address": ["市区町村", "町名・番地"],
        "building": "マンション名",
        "phone": "電話番号",
        "email": "E-mailアドレス",
    },
    "donation": {
        "portal_order_number": "受付番号",
        "external_id": "外部管理番号",
        "donated_at": "申込日",
        "paid_on": "入金日",
        "amount": "寄附金額",
        "payment_method": "寄附金の払込方法",
        "gift_declined": "返礼品辞退",
        "thank_you_letter_on": "お礼状出力日",
        "receipt_issued_on": "寄附受領証明書出力日",
        "one_stop_requested": "ワンストップ特例_要望",
        "one_stop_received_on": "ワンストップ特例 申請書返送確認日",
        "note": "備考",
    },
    "gift": {
        "code": "返礼品{n}_コード",
        "name": "返礼品{n}_名称",
        "desired_date": "返礼品{n}_配達希望日",
        "desired_time_slot": "返礼品{n}_配達希望時間",
        "carrier": "返礼品{n}_運送業者",
        "tracking_number": "返礼品{n}_伝票番号",
        "shipped_on": "返礼品{n}_発送日",
        "ship_to_name": "返礼品{n}_送り先_名前",
        "ship_to_kana": "返礼品{n}_送り先_フリガナ",
        "ship_to_postal_code": "返礼品{n}_送り先_郵便番号",
        "ship_to_address": [
            "返礼品{n}_送り先_都道府県",
            "返礼品{n}_送り先_市区町村",
            "返礼品{n}_送り先_町名・番地",
            "返礼品{n}_送り先_マンション名",
        ],
        "ship_to_phone": "返礼品{n}_送り先_電話番号",
    },
    "required": ["donor_number", "donated_at", "name", "amount"],
}

FURUSATO360: Mapping = {
    "style": "furusato360",
    "portal": "direct",
    "donor": {
        "name": "名前",
        "kana": "ふりがな",
        "postal_code": "郵便番号",
        "prefecture": "都道府県",
        "address": ["市区町村", "番地"],
        "building": "建物名",
        "phone": "電話番号",
        "email": "メールアドレス",
    },
    "donation": {
        "external_id": "外部管理番号",
        "portal_order_number": "受付番号",
        "donated_at": "寄附申込日",
        "paid_on": "入金処理日",
        "amount": "寄附金額",
        "payment_method": "寄附金の払込方法",
        "one_stop_requested": "ワンストップ特例_希望",
        "note": "備考",
    },
    "gift": {
        "code_and_name": "お礼の品_{n}",
        "ship_to_name": "お届け先_名前",
        "ship_to_kana": "お届け先_ふりがな",
        "ship_to_postal_code": "お届け先_郵便番号",
        "ship_to_address": [
            "お届け先_都道府県",
            "お届け先_市区町村",
            "お届け先_番地",
            "お届け先_建物名",
        ],
        "ship_to_phone": "お届け先_電話番号",
        "desired_weekday": "お届け希望曜日",
        "desired_time_slot": "お届け希望時間帯",
    },
    "required": ["external_id", "donated_at", "name", "amount"],
}

RAKUTEN: Mapping = {
    "style": "rakuten",
    "portal": "rakuten",
    "donor": {
        "name": ["注文者名字", "注文者名前"],
        "kana": ["注文者名字フリガナ", "注文者名前フリガナ"],
        "postal_code": ["注文者郵便番号1", "注文者郵便番号2"],
        "prefecture": "注文者住所都道府県",
        "address": ["注文者住所郡市区", "注文者住所それ以降の住所"],
        "phone": ["注文者電話番号1", "注文者電話番号2", "注文者電話番号3"],
        "email": "メールアドレス",
    },
    "donation": {
        "portal_order_number": "受注番号",
        "donated_at": "注文日時",
        "paid_on": "入金日",
        "amount": "合計金額",
        "payment_method": "決済方法",
        "note": "コメント",
    },
    "gift": {
        "code": "商品番号",
        "name": "商品名",
        "carrier": "配送会社",
        "tracking_number": "お荷物伝票番号",
        "shipped_on": "発送日",
        "desired_date": "お届け日指定",
        "desired_time_slot": "お届け時間帯",
        "ship_to_name": ["送付先名字", "送付先名前"],
        "ship_to_kana": ["送付先名字フリガナ", "送付先名前フリガナ"],
        "ship_to_postal_code": ["送付先郵便番号1", "送付先郵便番号2"],
        "ship_to_address": ["送付先住所都道府県", "送付先住所郡市区", "送付先住所それ以降の住所"],
        "ship_to_phone": ["送付先電話番号1", "送付先電話番号2", "送付先電話番号3"],
    },
    "required": ["portal_order_number", "donated_at", "name", "amount"],
    # An order with several items is several rows with the same 受注番号, one item each.
    "one_row_per_item": True,
}

PRESETS: dict[str, Mapping] = {m["style"]: m for m in (CHOICE, FURUSATO360, RAKUTEN)}

# Parts of a name or reading are joined with a space (姓 名); everything else runs together
# (郵便番号1+2, 市区町村+番地, 電話番号1+2+3).
SPACE_JOINED = frozenset({"name", "kana", "ship_to_name", "ship_to_kana"})
