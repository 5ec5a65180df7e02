"""Who pays for a re-shipment: the reason/fault → billable-to-the-city table.

The city pays for a re-shipment only where no one else is answerable for it. A re-shipment
caused by the operator or by the provider is never billable to the city (Fukuyama 8(1)イ): the
provider replaces at its own cost and the operator's mistakes are the operator's. A carrier's
damage, loss or misdelivery is claimed from the carrier (its liability), not from the city.
What the donor caused (a wrong or outdated address, a parcel left unclaimed) is resent at the
city's cost, and so is what nobody can be shown to have caused — except where the reason itself
points at the provider's packing (a short quantity, spoiled goods) or at the label (a wrong
address printed by whoever prepared it).
"""

from __future__ import annotations

from django.db import models


class Reason(models.TextChoices):
    DAMAGED = "damaged", "破損"
    QUALITY = "quality", "品質不良・傷み"
    LOST = "lost", "不着・紛失"
    MISDELIVERED = "misdelivered", "誤配送"
    SHORT = "short", "数量不足"
    RETURNED = "returned", "住所不明返送"
    OTHER = "other", "その他"


class Fault(models.TextChoices):
    PROVIDER = "provider", "返礼品提供事業者"
    CARRIER = "carrier", "配送業者"
    OPERATOR = "operator", "運営事業者"
    DONOR = "donor", "寄附者"
    UNKNOWN = "unknown", "不明"


# Faults that never bill the city, whatever the reason.
NEVER_BILLABLE = frozenset({Fault.PROVIDER, Fault.OPERATOR, Fault.CARRIER})
# With the fault unknown, these reasons are presumed the provider's or the label's.
UNKNOWN_FAULT_PRESUMED_NOT_CITY = frozenset({Reason.QUALITY, Reason.SHORT, Reason.MISDELIVERED})


def _billable(reason: str, fault: str) -> bool:
    if fault in NEVER_BILLABLE:
        return False
    if fault == Fault.DONOR:
        return True
    return reason not in UNKNOWN_FAULT_PRESUMED_NOT_CITY


# Every cell written out, so the screen can show the whole table and a test can pin it.
BILLABLE: dict[tuple[str, str], bool] = {
    (reason, fault): _billable(reason, fault) for reason in Reason for fault in Fault
}


def billable_to_city(*, reason: str, fault: str) -> bool:
    try:
        return BILLABLE[(reason, fault)]
    except KeyError as exc:
        raise ValueError(f"unknown reason/fault: {reason}/{fault}") from exc
