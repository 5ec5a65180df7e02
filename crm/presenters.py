"""The donor as every screen shows it: identity, contact and the flags that change the answer.

The screen pop, the donor page, the ticket page and the API all present a donor through
``present_donor``, so the same donor reads the same everywhere. Values stay raw (dates, codes);
templates and the browser format them.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

# Tones: "danger" changes what the agent may promise; "warn" asks for care.
DANGER = "danger"
WARN = "warn"
PLAIN = ""

RESIDENT_NO_GIFT = "区内在住（返礼品なし）"
RESIDENT = "区内在住"
RETURNED_MAIL = "住所不明返送あり"
DO_NOT_CONTACT = "連絡不可"


class Flag(str):
    """A flag's words, carrying how loudly to show them (``tone``); JSON sees only the words."""

    tone: str

    def __new__(cls, label: str, tone: str = PLAIN) -> Flag:
        flag = super().__new__(cls, label)
        flag.tone = tone
        return flag

    @property
    def label(self) -> str:
        return str(self)


@dataclass
class DonorView:
    id: int
    municipality_id: int
    donor_number: str
    name: str
    name_kana: str
    postal_code: str
    prefecture: str
    address: str
    building: str
    is_resident: bool
    gets_no_gift: bool
    returned_mail: bool
    do_not_contact: bool
    flags: list[Flag] = field(default_factory=list)

    @property
    def full_address(self) -> str:
        return f"{self.prefecture}{self.address}{self.building}"


def donor_flags(
    *, is_resident: bool, residents_excluded: bool, returned_mail: bool, do_not_contact: bool
) -> list[Flag]:
    flags = []
    if is_resident:
        flags.append(
            Flag(RESIDENT_NO_GIFT, DANGER) if residents_excluded else Flag(RESIDENT, PLAIN)
        )
    if returned_mail:
        flags.append(Flag(RETURNED_MAIL, WARN))
    if do_not_contact:
        flags.append(Flag(DO_NOT_CONTACT, DANGER))
    return flags


def present_donor(donor: Any, *, residents_excluded: bool | None = None) -> DonorView:
    """``donor`` is a ``crm.models.Donor``; ``residents_excluded`` defaults to its
    municipality's rule (pass it when the municipality is not loaded)."""
    if residents_excluded is None:
        residents_excluded = donor.municipality.residents_excluded
    return DonorView(
        id=donor.id,
        municipality_id=donor.municipality_id,
        donor_number=donor.donor_number,
        name=donor.name,
        name_kana=donor.name_kana,
        postal_code=donor.postal_code,
        prefecture=donor.prefecture,
        address=donor.address,
        building=donor.building,
        is_resident=donor.is_resident,
        gets_no_gift=donor.is_resident and residents_excluded,
        returned_mail=donor.returned_mail,
        do_not_contact=donor.do_not_contact,
        flags=donor_flags(
            is_resident=donor.is_resident,
            residents_excluded=residents_excluded,
            returned_mail=donor.returned_mail,
            do_not_contact=donor.do_not_contact,
        ),
    )


def as_json(value: Any) -> Any:
    """A view (or a list or dict of them) as JSON-ready data: dates as ISO 8601 text."""
    if isinstance(value, Flag):
        return str(value)
    if isinstance(value, datetime.date):  # datetimes too
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {name: as_json(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    return value
