"""The reason/fault → billable-to-the-city table, cell by cell."""

from __future__ import annotations

import pytest

from reshipments.rules import BILLABLE, Fault, Reason, billable_to_city

R, F = Reason, Fault
# Written out by hand: a change to the rule must change this table too.
EXPECTED = {
    #                  provider carrier operator donor  unknown
    R.DAMAGED: (False, False, False, True, True),
    R.QUALITY: (False, False, False, True, False),
    R.LOST: (False, False, False, True, True),
    R.MISDELIVERED: (False, False, False, True, False),
    R.SHORT: (False, False, False, True, False),
    R.RETURNED: (False, False, False, True, True),
    R.OTHER: (False, False, False, True, True),
}
FAULTS = (F.PROVIDER, F.CARRIER, F.OPERATOR, F.DONOR, F.UNKNOWN)


@pytest.mark.parametrize(
    ("reason", "fault", "billable"),
    [(reason, fault, row[i]) for reason, row in EXPECTED.items() for i, fault in enumerate(FAULTS)],
)
def test_each_cell(reason, fault, billable):
    assert billable_to_city(reason=reason, fault=fault) is billable


def test_the_table_covers_every_reason_and_fault():
    assert set(BILLABLE) == {(r, f) for r in Reason for f in Fault}
    assert set(EXPECTED) == set(Reason)


@pytest.mark.parametrize("reason", list(Reason))
def test_operator_and_provider_faults_are_never_billable(reason):
    # Fukuyama 8(1)イ: re-shipments caused by the operator or the provider are not the city's.
    assert not billable_to_city(reason=reason, fault=Fault.OPERATOR)
    assert not billable_to_city(reason=reason, fault=Fault.PROVIDER)


def test_unknown_values_are_refused():
    with pytest.raises(ValueError):
        billable_to_city(reason="broken", fault="donor")
