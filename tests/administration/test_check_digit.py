"""全国地方公共団体コード: the sixth digit checks the first five (weights 6,5,4,3,2; 11 minus the
remainder mod 11, keeping the ones digit, so remainders 0 and 1 give 1 and 0)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from crm.models import Municipality
from crm.normalize import municipality_code_is_valid

REAL_CODES = [
    ("011002", "札幌市"),  # remainder 9 → 2
    ("012033", "小樽市"),
    ("342076", "福山市"),
    ("142051", "藤沢市"),
    ("131148", "中野区"),
    ("130001", "東京都"),  # remainder 10 → 1
    ("011011", "札幌市中央区"),
    ("472018", "那覇市"),
]


@pytest.mark.parametrize(("code", "name"), REAL_CODES)
def test_real_codes_pass(code, name):
    assert municipality_code_is_valid(code), name


@pytest.mark.parametrize(
    "code",
    ["011003", "012034", "342070", "142050", "13114", "1311488", "13114a", "", "０１１００２"],
)
def test_wrong_check_digits_and_shapes_fail(code):
    assert not municipality_code_is_valid(code)


def _remainder_cases():
    """For every remainder 0–10 some five-digit body, and the check digit the rule gives."""
    found = {}
    for n in range(100000):
        body = f"{n:05d}"
        r = sum(int(d) * w for d, w in zip(body, (6, 5, 4, 3, 2), strict=True)) % 11
        found.setdefault(r, body)
        if len(found) == 11:
            break
    return [(r, body, {0: 1, 1: 0}.get(r, 11 - r)) for r, body in sorted(found.items())]


@pytest.mark.parametrize(("remainder", "body", "digit"), _remainder_cases())
def test_every_remainder(remainder, body, digit):
    assert municipality_code_is_valid(body + str(digit))
    for other in set(range(10)) - {digit}:
        assert not municipality_code_is_valid(body + str(other))


@pytest.mark.django_db
def test_the_municipality_form_refuses_a_wrong_check_digit(admin):
    response = admin.post(
        reverse("administration:municipality_create"),
        {
            "code": "011003",
            "name": "札幌市",
            "name_kana": "サッポロシ",
            "prefecture": "北海道",
            "answer_name": "札幌市ふるさと納税コールセンター",
        },
    )
    assert response.status_code == 200
    assert "検査数字" in response.content.decode()
    assert not Municipality.objects.filter(code="011003").exists()
