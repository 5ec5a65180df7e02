"""Parsing one cell into a typed value. Every parser raises ValueError with a Japanese reason."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from crm.normalize import nfkc

# The sources write Japan time without saying so.
JAPAN = ZoneInfo("Asia/Tokyo")

# Era name → the Gregorian year before its first year (令和1 = 2019), the era's first and last day.
_ERAS = {
    "令和": (2018, dt.date(2019, 5, 1), dt.date.max),
    "R": (2018, dt.date(2019, 5, 1), dt.date.max),
    "平成": (1988, dt.date(1989, 1, 8), dt.date(2019, 4, 30)),
    "H": (1988, dt.date(1989, 1, 8), dt.date(2019, 4, 30)),
}

_TIME = r"(?:[ T]+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?)?"
_GREGORIAN = re.compile(
    r"(?P<year>\d{4})(?:[/\-.](?P<m1>\d{1,2})[/\-.](?P<d1>\d{1,2})|年(?P<m2>\d{1,2})月(?P<d2>\d{1,2})日"
    r"|(?P<m3>\d{2})(?P<d3>\d{2}))" + _TIME
)
_ERA = re.compile(
    r"(?P<era>令和|平成|R|H)(?P<year>\d{1,2}|元)(?:年(?P<m2>\d{1,2})月(?P<d2>\d{1,2})日"
    r"|[/\-.](?P<m1>\d{1,2})[/\-.](?P<d1>\d{1,2}))" + _TIME,
    re.IGNORECASE,
)


def _clean(raw: str) -> str:
    return nfkc(raw).strip()


def parse_datetime(raw: str) -> dt.datetime | None:
    """2024/1/5, 2024-01-05, 2024年1月5日, 20240105, 令和6年1月5日, R6.1.5, with an optional
    time (10:23 or 10:23:45), in Japan time."""
    text = _clean(raw)
    if not text:
        return None
    match = _GREGORIAN.fullmatch(text)
    if match:
        year = int(match["year"])
    else:
        match = _ERA.fullmatch(text)
        if not match:
            raise ValueError(f"日付として読めません（{raw}）")
        base, first_day, last_day = _ERAS[
            match["era"].upper() if len(match["era"]) == 1 else match["era"]
        ]
        year = base + (1 if match["year"] == "元" else int(match["year"]))
    month = match["m1"] or match["m2"] or match.groupdict().get("m3")
    day = match["d1"] or match["d2"] or match.groupdict().get("d3")
    try:
        value = dt.datetime(
            year,
            int(month),
            int(day),
            int(match["hour"] or 0),
            int(match["minute"] or 0),
            int(match["second"] or 0),
            tzinfo=JAPAN,
        )
    except ValueError:
        raise ValueError(f"存在しない日付です（{raw}）") from None
    if match.re is not _GREGORIAN and not first_day <= value.date() <= last_day:
        raise ValueError(f"元号と日付が合いません（{raw}）")
    return value


def parse_date(raw: str) -> dt.date | None:
    value = parse_datetime(raw)
    return value.date() if value else None


def parse_amount(raw: str) -> int | None:
    """'¥10,000', '￥１０，０００', '10000円' → 10000."""
    text = re.sub(r"[¥,\s円]", "", _clean(raw))
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"金額として読めません（{raw}）")
    amount = int(text)
    if amount <= 0:
        raise ValueError(f"金額が0円です（{raw}）")
    return amount


_TRUE = frozenset(
    {"希望する", "希望", "する", "要", "有", "あり", "はい", "1", "true", "yes", "○", "〇"}
)
_FALSE = frozenset(
    {"希望しない", "しない", "不要", "無", "なし", "いいえ", "0", "false", "no", "×", "-"}
)


def parse_bool(raw: str) -> bool:
    text = _clean(raw).lower()
    if not text or text in _FALSE:
        return False
    if text in _TRUE:
        return True
    raise ValueError(f"「希望する／希望しない」として読めません（{raw}）")


def parse_text(raw: str) -> str:
    """Names, addresses, notes: kept as written (髙 and 﨑 stay), only the outer space goes."""
    return raw.strip().replace("\r\n", "\n")


_PAYMENT_METHODS = (
    ("クレジット", "credit_card"),
    ("カード", "credit_card"),
    ("銀行", "bank_transfer"),
    ("郵便", "postal_transfer"),
    ("ゆうちょ", "postal_transfer"),
    ("コンビニ", "convenience_store"),
    ("paypay", "paypay"),
    ("現金", "cash"),
    ("窓口", "cash"),
)


def parse_payment_method(raw: str) -> str:
    """A donations_sync.models.PaymentMethod value, '' when empty."""
    text = _clean(raw).lower()
    if not text:
        return ""
    for word, value in _PAYMENT_METHODS:
        if word in text:
            return value
    raise ValueError(f"払込方法が分かりません（{raw}）")


_TIME_SLOT = re.compile(r"(\d{1,2})(?::00)?時?\s*[-~〜～]\s*(\d{1,2})(?::00)?時?")
_TIME_SLOTS = frozenset({"14-16", "16-18", "18-20", "19-21"})


def parse_time_slot(raw: str) -> str:
    """A Shipment.TimeSlot value: 'am', '14-16' …; '' for none."""
    text = _clean(raw)
    if not text or text in {"指定なし", "なし", "-"}:
        return ""
    if "午前" in text:
        return "am"
    match = _TIME_SLOT.fullmatch(text)
    if match and f"{int(match[1])}-{int(match[2])}" in _TIME_SLOTS:
        return f"{int(match[1])}-{int(match[2])}"
    raise ValueError(f"配達希望時間帯が分かりません（{raw}）")


_CODE_AND_NAME = re.compile(r"\[(?P<code>[^\]]+)\]\s*(?P<name>.*)", re.DOTALL)


def parse_code_and_name(raw: str) -> tuple[str, str]:
    """Furusato360's '[AB-001] 名称' (full-width brackets too)."""
    text = raw.strip().replace("［", "[").replace("］", "]")
    match = _CODE_AND_NAME.fullmatch(text)
    if not match:
        raise ValueError(f"お礼の品が「[コード] 名称」の形ではありません（{raw}）")
    return match["code"].strip(), match["name"].strip()


_RAKUTEN_ORDER = re.compile(r"\d{6}-\d{8}-\d{8,10}")


def parse_order_number(raw: str, portal: str) -> str:
    text = _clean(raw)
    if portal == "rakuten" and text and not _RAKUTEN_ORDER.fullmatch(text):
        raise ValueError(f"楽天の受注番号の形（123456-20240101-00111801）ではありません（{raw}）")
    return text


# Characters a CP932 export writes for what it could not encode (〓 is the 'geta' mark).
UNREADABLE_MARKS = frozenset("〓?？\ufffd")


def name_is_unreadable(name: str) -> bool:
    return not name.strip() or any(ch in UNREADABLE_MARKS for ch in name)
