"""Normalizers used everywhere a caller's words meet stored data.

Phones are stored as E.164, kana as full-width katakana without spaces, postal codes as seven
digits, tracking numbers as bare digits (or upper-case S10 codes). Every importer, search box and
webhook goes through these functions so that "０９０−１２３４−５６７８" and "+819012345678" meet.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

# Caller IDs that mean "the number was withheld or unknown" rather than a real number.
# Twilio sends these literal values for anonymous / restricted / unavailable callers.
WITHHELD_CALLER_IDS = frozenset(
    {
        "anonymous",
        "restricted",
        "unknown",
        "unavailable",
        "private",
        "blocked",
        "+266696687",  # "ANONYMOUS" on a phone keypad
        "+7378742833",  # "RESTRICTED"
        "+86282452253",  # "UNAVAILABLE"
        "+8656696",  # "UNKNOWN"
    }
)


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def normalize_phone(raw: str | None) -> str | None:
    """Return the E.164 form of a Japanese or international number, or None.

    None means "no usable number": empty, withheld, or not a valid number.
    """
    if not raw:
        return None
    text = nfkc(raw).strip()
    # Dashes of every width and style are noise between digits.
    text = re.sub(r"[\s\-‐‑‒–—―ー−()（）.]", "", text)
    if not text or text.lower() in WITHHELD_CALLER_IDS:
        return None
    if text.startswith("00"):  # international prefix dialled from Japan ("010" is JP's own)
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, "JP")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def format_phone_national(e164: str | None) -> str:
    """090-1234-5678 style, for display."""
    if not e164:
        return ""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    if parsed.country_code == 81:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


_KANA_NOISE = re.compile(r"[\s・･,、.。]")

# Hiragana ぁ..ゖ, ゝ, ゞ → katakana ァ..ヶ, ヽ, ヾ (a fixed offset); str.translate keeps bulk
# loads fast. tickets/migrations/0008 holds a frozen copy for the stored search text.
HIRAGANA = "".join(chr(code) for code in (*range(0x3041, 0x3097), 0x309D, 0x309E))
KATAKANA = "".join(chr(ord(ch) + 0x60) for ch in HIRAGANA)
_HIRAGANA_TO_KATAKANA = str.maketrans(HIRAGANA, KATAKANA)


def fold_kana(text: str | None) -> str:
    """The one kana folding, for what is stored and what is searched alike: NFKC (full and half
    width agree, ｶﾞ → ガ), then hiragana become katakana. Spaces and case are left alone."""
    return nfkc(text or "").translate(_HIRAGANA_TO_KATAKANA)


def normalize_kana(raw: str | None) -> str:
    """A reading (フリガナ) as stored and compared: folded kana, without spaces or dots."""
    return _KANA_NOISE.sub("", fold_kana(raw))


def looks_like_kana(text: str) -> bool:
    normalized = normalize_kana(text)
    return bool(normalized) and all("゠" <= ch <= "ヿ" for ch in normalized)


def normalize_postal_code(raw: str | None) -> str:
    """'〒123-4567', '１２３４５６７' → '1234567'; anything else → ''."""
    if not raw:
        return ""
    digits = re.sub(r"\D", "", nfkc(raw))
    return digits if len(digits) == 7 else ""


def format_postal_code(code: str) -> str:
    return f"{code[:3]}-{code[3:]}" if len(code) == 7 else code


def normalize_email(raw: str | None) -> str:
    if not raw:
        return ""
    return nfkc(raw).strip().lower()


# --- Tracking numbers -------------------------------------------------------------------

TRACKING_RULE_MOD7_12 = "mod7_12"  # ヤマト運輸, 佐川急便, 日本郵便 ゆうパック
TRACKING_RULE_MOD7_11 = "mod7_11"  # 日本郵便 書留・特定記録
TRACKING_RULE_UPU_S10 = "upu_s10"  # international, e.g. RR123456785JP

_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


def clean_tracking_number(raw: str | None) -> str:
    if not raw:
        return ""
    return re.sub(r"[\s\-‐‑‒–—―ー−]", "", nfkc(raw)).upper()


def mod7_check_digit(body: str) -> int:
    return int(body) % 7


def s10_check_digit(serial: str) -> int:
    total = sum(int(d) * w for d, w in zip(serial, _S10_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: 0, 11: 5}.get(check, check)


def tracking_number_is_valid(number: str, rule: str) -> bool:
    """Validate a cleaned tracking number against its carrier's check-digit rule."""
    if rule == TRACKING_RULE_MOD7_12:
        return bool(re.fullmatch(r"\d{12}", number)) and mod7_check_digit(number[:11]) == int(
            number[11]
        )
    if rule == TRACKING_RULE_MOD7_11:
        return bool(re.fullmatch(r"\d{11}", number)) and mod7_check_digit(number[:10]) == int(
            number[10]
        )
    if rule == TRACKING_RULE_UPU_S10:
        match = re.fullmatch(r"[A-Z]{2}(\d{8})(\d)[A-Z]{2}", number)
        return bool(match) and s10_check_digit(match.group(1)) == int(match.group(2))
    return False


def tracking_rule_for(number: str) -> str | None:
    """Which rule a cleaned number satisfies, if any (used to spot numbers in free text)."""
    for rule in (TRACKING_RULE_MOD7_12, TRACKING_RULE_MOD7_11, TRACKING_RULE_UPU_S10):
        if tracking_number_is_valid(number, rule):
            return rule
    return None


def format_tracking_number(number: str) -> str:
    """1234-5678-9012 for 12 digits, as carriers print it."""
    if re.fullmatch(r"\d{12}", number):
        return f"{number[:4]}-{number[4:8]}-{number[8:]}"
    return number


# --- Local-government codes (全国地方公共団体コード) -------------------------------------


def municipality_code_is_valid(code: str) -> bool:
    """Six digits; the last is 11 − (weighted sum mod 11), keeping the ones digit."""
    if not re.fullmatch(r"[0-9]{6}", code or ""):  # not \d: it also takes full-width digits
        return False
    total = sum(int(d) * w for d, w in zip(code[:5], (6, 5, 4, 3, 2), strict=True))
    return (11 - total % 11) % 10 == int(code[5])
