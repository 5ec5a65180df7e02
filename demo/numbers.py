"""Numbers as the outside world writes them: portal order numbers, tracking numbers, phones.

Portal order-number formats (受付番号). 楽天's is the documented one; the others are stand-ins of
the shape each portal prints (length, prefix, separators), chosen so that no two portals' formats
can be mistaken for each other or for a tracking number:

=========  ================================  ==========================
portal     format                            example
=========  ================================  ==========================
rakuten    shop(6)-YYYYMMDD-serial(8)        123456-20241201-00111801
choice     YYYYMMDD + serial(8)              2024120100012345
satofull   S + YYMMDD - serial(7)            S241201-0012345
furunavi   FN + YYYYMMDD + serial(6)         FN20241201001234
ana        ANA-YYYYMMDD-serial(6)            ANA-20241201-001234
jre        JRE + serial(11)                  JRE00001234567
aupay      AU + YYMMDD + serial(8)           AU24120100012345
direct     (none: 郵送・窓口 donations are known by the management number only)
=========  ================================  ==========================

外部管理番号 (the management system's number): municipality code(5)-YYYY-serial(7),
e.g. 01203-2024-0012345.
"""

from __future__ import annotations

import datetime
import random

from crm import normalize

# --- Order numbers ---------------------------------------------------------------------------


def rakuten_shop_id(municipality_code: str) -> str:
    """A six-digit 楽天 shop id per municipality, stable across runs."""
    return f"{(int(municipality_code) * 7 + 100003) % 900000 + 100000:06d}"


def portal_order_number(
    portal: str, serial: int, day: datetime.date, municipality_code: str
) -> str:
    ymd = f"{day.year:04d}{day.month:02d}{day.day:02d}"
    if portal == "rakuten":
        return f"{rakuten_shop_id(municipality_code)}-{ymd}-{serial % 10**8:08d}"
    if portal == "choice":
        return f"{ymd}{serial % 10**8:08d}"
    if portal == "satofull":
        return f"S{ymd[2:]}-{serial % 10**7:07d}"
    if portal == "furunavi":
        return f"FN{ymd}{serial % 10**6:06d}"
    if portal == "ana":
        return f"ANA-{ymd}-{serial % 10**6:06d}"
    if portal == "jre":
        return f"JRE{serial % 10**11:011d}"
    if portal == "aupay":
        return f"AU{ymd[2:]}{serial % 10**8:08d}"
    return ""


def external_id(municipality_code: str, year: int, serial: int) -> str:
    return f"{municipality_code[:5]}-{year}-{serial:07d}"


# --- Tracking numbers ------------------------------------------------------------------------


class TrackingNumbers:
    """Unique, valid tracking numbers for one carrier.

    Serial i is spread over the number space by multiplying with a stride coprime to 10, which
    is a permutation: numbers look random yet never repeat within a run.
    """

    _STRIDE = 7_919_123_457  # odd, not a multiple of 5

    def __init__(self, rule: str, prefix: str, rng: random.Random) -> None:
        self.rule = rule
        self.prefix = prefix
        self.serial = rng.randrange(10**6)

    def next(self) -> str:
        self.serial += 1
        if self.rule == normalize.TRACKING_RULE_MOD7_12:
            body = self.prefix + f"{self.serial * self._STRIDE % 10**10:010d}"
            return body + str(normalize.mod7_check_digit(body))
        if self.rule == normalize.TRACKING_RULE_MOD7_11:
            body = self.prefix + f"{self.serial * self._STRIDE % 10**9:09d}"
            return body + str(normalize.mod7_check_digit(body))
        # UPU S10: service letters, 8-digit serial, check digit, country.
        serial = f"{self.serial * self._STRIDE % 10**8:08d}"
        return f"{self.prefix[:2]}{serial}{normalize.s10_check_digit(serial)}{self.prefix[2:]}"


# --- Phone numbers ---------------------------------------------------------------------------

_FULL_WIDTH = str.maketrans("0123456789-+", "０１２３４５６７８９－＋")


# Tokyo and Osaka numbers in use start with these digits (03-3xxx, 03-5xxx, 06-6xxx …).
_EXCHANGE_FIRST_DIGITS = {"03": "3456", "06": "46"}


def _valid_exchanges(area_code: str) -> list[str]:
    """Local exchanges of an area code that form valid numbers (checked once, not per number)."""
    local_len = 10 - len(area_code)  # national numbers are ten digits with the leading 0
    exchange_len = local_len - 4
    # A sample is plenty; its own Random keeps the caller's sequence independent of it.
    lowest = 2 * 10 ** (exchange_len - 1)  # exchanges never start with 0 or 1
    population = range(lowest, 10**exchange_len)
    sample = random.Random(area_code).sample(population, min(120, len(population)))
    first_digits = _EXCHANGE_FIRST_DIGITS.get(area_code, "23456789")
    candidates = [f"{n:0{exchange_len}d}" for n in sorted(sample) if str(n)[0] in first_digits]
    return [ex for ex in candidates if normalize.normalize_phone(area_code + ex + "1234")]


class Phones:
    """Japanese numbers as donors write them, with their E.164 form.

    The E.164 form is derived from the digits; tests check that crm.normalize agrees for
    every generated raw form, so the fast path stores exactly what normalization would.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._exchanges: dict[str, list[str]] = {}

    def _exchange(self, area_code: str) -> str:
        exchanges = self._exchanges.get(area_code)
        if exchanges is None:
            exchanges = self._exchanges[area_code] = _valid_exchanges(area_code)
        return exchanges[int(self.rng.random() * len(exchanges))]

    def mobile(self) -> str:
        """070/080/090 numbers (the digit after 0X0 is never 0)."""
        n = int(self.rng.random() * 3 * 9 * 10**7)
        prefix, rest = divmod(n, 9 * 10**7)
        return f"0{7 + prefix}0{rest // 10**7 + 1}{rest % 10**7:07d}"

    def landline(self, area_code: str) -> str:
        return f"{area_code}{self._exchange(area_code)}{int(self.rng.random() * 10000):04d}"

    def raw_form(self, national: str, area_code: str | None = None) -> str:
        """One of the ways people write a number: hyphenated, plain, full-width or +81."""
        pick = self.rng.random()
        if pick < 0.40:
            return hyphenate(national, area_code)
        if pick < 0.70:
            return national
        if pick < 0.85:
            return hyphenate(national, area_code).translate(_FULL_WIDTH)
        return e164(national)


def e164(national: str) -> str:
    return "+81" + national[1:]


def hyphenate(national: str, area_code: str | None = None) -> str:
    if area_code is None:  # mobile / IP: 090-1234-5678
        return f"{national[:3]}-{national[3:7]}-{national[7:]}"
    rest = national[len(area_code) :]
    return f"{area_code}-{rest[:-4]}-{rest[-4:]}"
