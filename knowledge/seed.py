"""The starter set: operator-wide FAQ articles and canned replies for the common inquiries.

Facts follow the rules of the system (DOMAIN.md): one-stop for at most 5 municipalities a year,
application must arrive by January 10 of the following year, filing a tax return cancels it, a
change of name or address after applying needs a 変更届出書; receipts go out within 2 weeks of
payment to the applicant's name and address; cancellations are generally refused.
Used by the data migration and by ``seed_starter_content`` (idempotent, keyed by seed_key).
"""

from __future__ import annotations

ARTICLES: list[dict[str, str | int]] = [
    {
        "seed_key": "faq-one-stop-rules",
        "category_code": "one_stop",
        "title": "ワンストップ特例の条件と申請期限（翌年1月10日必着）",
        "keywords": "ワンストップ 特例 申請書 期限 1月10日 5自治体 確定申告",
        "body": (
            "■ 使える方\n"
            "・確定申告をする必要のない給与所得者等で、1年間（1月〜12月）の寄附先が5自治体以内の方。\n"
            "  同じ自治体への複数回の寄附は1自治体と数えます。\n"
            "■ 申請期限\n"
            "・寄附した翌年の1月10日必着。寄附ごとに申請書が必要です。\n"
            "■ 注意\n"
            "・確定申告をするとワンストップ特例は無効になります。その場合は確定申告で寄附金控除を申告してください"
            "（受領証明書が必要です）。\n"
            "・申請後に氏名・住所が変わったときは、翌年1月10日までに「変更届出書」を提出してください。\n"
            "・6自治体以上に寄附した場合はワンストップ特例は使えず、確定申告が必要です。"
        ),
        "sort_order": 10,
    },
    {
        "seed_key": "faq-receipt",
        "category_code": "receipt",
        "title": "寄附金受領証明書の発送時期・再発行",
        "keywords": "受領証明書 証明書 届かない 未着 再発行 紛失",
        "body": (
            "・受領証明書は入金確認後、2週間以内に寄附申込者の氏名・住所あてに発送します。\n"
            "・申込者以外の名義・住所では発行できません（寄附は申込者本人からのものとして扱われます）。\n"
            "・未着・紛失のときは、住所を確認のうえ再発行します（住所不明で返送されていないかも確認）。\n"
            "・確定申告では受領証明書が必要です。ワンストップ特例の方は申告に使いません。"
        ),
        "sort_order": 20,
    },
    {
        "seed_key": "faq-address-change",
        "category_code": "address_change",
        "title": "住所・氏名が変わったとき",
        "keywords": "住所変更 引っ越し 転居 氏名変更 変更届出書",
        "body": (
            "・返礼品の発送前なら、送り先を変更して事業者に連絡します（発送済みの場合は配送業者に転送を依頼）。\n"
            "・受領証明書は申込時の氏名・住所で発行されます。発行前の変更はこちらで記録を更新します。\n"
            "・ワンストップ特例を申請済みで住所・氏名が変わったときは「変更届出書」を翌年1月10日までに提出してもらいます。"
        ),
        "sort_order": 30,
    },
    {
        "seed_key": "faq-damaged-gift",
        "category_code": "damaged",
        "title": "返礼品が破損・傷んでいたとき",
        "keywords": "破損 傷み 腐敗 割れ 不良 再送 代品 写真",
        "body": (
            "・お詫びし、状態（写真があれば写真）、届いた日、伝票番号、箱の状態を伺います。\n"
            "・事業者と配送業者に確認し、再送（代品手配）を手配します。生ものは処分方法も案内します。\n"
            "・品質・配送の苦情は自治体へ報告します（重大な場合は速やかに）。"
        ),
        "sort_order": 40,
    },
    {
        "seed_key": "faq-cancellation",
        "category_code": "cancellation",
        "title": "寄附の取消し（キャンセル）",
        "keywords": "キャンセル 取消 取り消し 返金",
        "body": (
            "・寄附は原則として取消しできません。\n"
            "・重複申込など特別な事情がある場合は内容を記録し、自治体に確認のうえ回答します。"
        ),
        "sort_order": 50,
    },
    {
        "seed_key": "faq-resident",
        "category_code": "gift_contents",
        "title": "自治体の住民からの寄附（返礼品なし）",
        "keywords": "住民 市内 区内 在住 返礼品なし",
        "body": (
            "・住民の方もご自身の自治体に寄附できますが、返礼品は送られません。\n"
            "・寄附金控除（ワンストップ特例・確定申告）は受けられます。"
        ),
        "sort_order": 60,
    },
]

CANNED_REPLIES: list[dict[str, str | int]] = [
    {
        "seed_key": "canned-one-stop",
        "category_code": "one_stop",
        "title": "ワンストップ特例の申請期限のご案内",
        "keywords": "ワンストップ 期限 1月10日",
        "body": (
            "{寄附者名} 様\n\n"
            "このたびは{自治体名}へのご寄附、誠にありがとうございます。\n"
            "ワンストップ特例申請書は、寄附された翌年の1月10日必着でご提出ください。"
            "1年間の寄附先が5自治体以内の方がご利用いただけます。\n"
            "なお、確定申告をされる場合はワンストップ特例が無効となりますので、確定申告にて寄附金控除をお申し出ください。\n"
            "申請後にお名前やご住所が変わった場合は、1月10日までに変更届出書をご提出ください。\n\n"
            "受付番号: {受付番号}\n"
            "{応答名} {担当者名}"
        ),
        "sort_order": 10,
    },
    {
        "seed_key": "canned-receipt-reissue",
        "category_code": "receipt",
        "title": "受領証明書の再発行のご案内",
        "keywords": "受領証明書 再発行 未着",
        "body": (
            "{寄附者名} 様\n\n"
            "{自治体名}へのご寄附（受付番号 {受付番号}、{寄附日}、{寄附金額}）の寄附金受領証明書について、"
            "再発行の手続きをいたしました。お申込み時のお名前・ご住所あてにお送りします。\n"
            "お手元に届くまで1〜2週間ほどお待ちください。\n\n"
            "{応答名} {担当者名}"
        ),
        "sort_order": 20,
    },
    {
        "seed_key": "canned-address-change",
        "category_code": "address_change",
        "title": "住所変更の受付",
        "keywords": "住所変更 転居",
        "body": (
            "{寄附者名} 様\n\n"
            "ご住所の変更を承りました（受付番号 {受付番号}）。\n"
            "返礼品の発送前のものは新しいご住所へお届けします。"
            "ワンストップ特例を申請済みの場合は、翌年1月10日までに変更届出書のご提出をお願いいたします。\n\n"
            "{応答名} {担当者名}"
        ),
        "sort_order": 30,
    },
    {
        "seed_key": "canned-damaged-gift",
        "category_code": "damaged",
        "title": "返礼品破損のお詫びと再送のご案内",
        "keywords": "破損 お詫び 再送 代品",
        "body": (
            "{寄附者名} 様\n\n"
            "このたびは、お届けした返礼品「{返礼品名}」（{配送業者} 伝票番号 {伝票番号}、{発送日}発送）が"
            "破損した状態で届きましたこと、誠に申し訳ございません。\n"
            "事業者と確認のうえ、代わりの品をお送りいたします。発送の準備ができ次第、あらためてご連絡いたします。\n\n"
            "{応答名} {担当者名}"
        ),
        "sort_order": 40,
    },
    {
        "seed_key": "canned-shipping-status",
        "category_code": "shipping_status",
        "title": "発送状況のご案内",
        "keywords": "配送 発送 いつ届く 追跡",
        "body": (
            "{寄附者名} 様\n\n"
            "お問合せの返礼品「{返礼品名}」は{発送日}に{配送業者}にて発送しております。\n"
            "伝票番号 {伝票番号} で配送状況をご確認いただけます。\n\n"
            "{応答名} {担当者名}"
        ),
        "sort_order": 50,
    },
]


# 定型文 that also act on the ticket (macros). Status 6 is tickets' 対応中; kept apart from
# CANNED_REPLIES because the first data migration's historical model has no action fields.
MACROS: list[dict[str, str | int | bool]] = [
    {
        "seed_key": "macro-receipt-reissue",
        "category_code": "receipt",
        "title": "受領証明書の再発行を受付",
        "keywords": "受領証明書 再発行 受付 未着 紛失",
        "body": (
            "{寄附者名} 様\n\n"
            "{自治体名}へのご寄附（受付番号 {受付番号}）の寄附金受領証明書の再発行を承りました。\n"
            "お申込み時のお名前・ご住所あてに、1〜2週間ほどでお送りします。\n\n"
            "{応答名} {担当者名}"
        ),
        "sort_order": 15,
        "action_status": 6,
        "action_set_category": True,
        "action_assignee": "me",
        "action_note": "受領証明書の再発行を自治体へ依頼する（申込時の氏名・住所あて）。",
    },
    {
        "seed_key": "macro-damaged-reship",
        "category_code": "damaged",
        "title": "返礼品破損の受付（再送手配）",
        "keywords": "破損 傷み 再送 代品 受付",
        "body": (
            "{寄附者名} 様\n\n"
            "お届けした返礼品「{返礼品名}」が破損していたとのこと、誠に申し訳ございません。\n"
            "事業者と確認のうえ代わりの品をお送りします。準備ができ次第あらためてご連絡いたします。\n\n"
            "{応答名} {担当者名}"
        ),
        "sort_order": 45,
        "action_status": 6,
        "action_set_category": True,
        "action_severity": "high",
        "action_assignee": "me",
        "action_note": "事業者へ代品の手配を依頼し、配送業者に破損の状況を確認する。",
    },
]


def seed_macros(canned_model) -> int:
    """Create or refresh the starter macros (operator-wide); idempotent like the rest."""
    for row in MACROS:
        defaults = {k: v for k, v in row.items() if k != "seed_key"}
        canned_model.objects.update_or_create(
            seed_key=row["seed_key"], defaults={**defaults, "municipality": None}
        )
    return len(MACROS)


def seed_starter_content(article_model, canned_model) -> int:
    """Create or refresh the starter rows (operator-wide). Returns how many rows were written.

    Takes the model classes so the data migration can pass its historical models.
    """
    written = 0
    for model, rows in ((article_model, ARTICLES), (canned_model, CANNED_REPLIES)):
        for row in rows:
            defaults = {k: v for k, v in row.items() if k != "seed_key"}
            model.objects.update_or_create(
                seed_key=row["seed_key"], defaults={**defaults, "municipality": None}
            )
            written += 1
    return written
