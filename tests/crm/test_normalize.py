import pytest

from crm import normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("090-1234-5678", "+819012345678"),
        ("09012345678", "+819012345678"),
        ("０９０−１２３４−５６７８", "+819012345678"),
        ("０９０ー１２３４ー５６７８", "+819012345678"),
        ("+819012345678", "+819012345678"),
        ("+81 90 1234 5678", "+819012345678"),
        ("(03) 1234-5678", "+81312345678"),
        ("0312345678", "+81312345678"),
        ("0134-32-4111", "+81134324111"),
        ("0120-123-456", "+81120123456"),
        ("050-1234-5678", "+815012345678"),
        ("anonymous", None),
        ("Anonymous", None),
        ("+266696687", None),
        ("+7378742833", None),
        ("", None),
        (None, None),
        ("12345", None),
        ("090-1234-567", None),
        ("abc", None),
    ],
)
def test_normalize_phone(raw, expected):
    assert normalize.normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ヤマダ タロウ", "ヤマダタロウ"),
        ("やまだ たろう", "ヤマダタロウ"),
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダタロウ"),
        ("ｻﾄｳ　ﾊﾅｺ", "サトウハナコ"),
        ("ﾊﾟﾝ", "パン"),
        ("", ""),
    ],
)
def test_normalize_kana(raw, expected):
    assert normalize.normalize_kana(raw) == expected


def test_kana_fold_one_way_for_readings_and_search():
    from tickets.search import normalize_for_search

    typed = "やまだ ﾀﾛｳ ゔぁ ゝ"
    assert normalize.fold_kana(typed) == "ヤマダ タロウ ヴァ ヽ"
    assert normalize.normalize_kana(typed) == "ヤマダタロウヴァヽ"
    assert normalize_for_search(typed) == normalize.fold_kana(typed)


@pytest.mark.parametrize(
    ("raw", "rule", "valid"),
    [
        ("123456789013", "mod7_12", True),  # 12345678901 % 7 == 3
        ("1234-5678-9013", "mod7_12", True),
        ("１２３４５６７８９０１３", "mod7_12", True),
        ("123456789016", "mod7_12", False),
        ("12345678901", "mod7_12", False),
        ("12345678903", "mod7_11", True),  # 1234567890 % 7 == 3
        ("12345678904", "mod7_11", False),
        ("RR123456785JP", "upu_s10", True),
        ("rr123456785jp", "upu_s10", True),
        ("RR123456784JP", "upu_s10", False),
        ("RR12345678JP", "upu_s10", False),
    ],
)
def test_tracking_number_check_digits(raw, rule, valid):
    assert normalize.tracking_number_is_valid(normalize.clean_tracking_number(raw), rule) is valid


def test_s10_check_digit_special_cases():
    # weights 8,6,4,2,3,5,9,7; 11 - sum mod 11, with 10 → 0 and 11 → 5
    assert normalize.s10_check_digit("12345678") == 5
    assert normalize.s10_check_digit("00000000") == 5  # 11 - 0 = 11 → 5
    assert normalize.s10_check_digit("00000008") == 0  # sum 56 → 11 - 1 = 10 → 0
    assert normalize.s10_check_digit("00000001") == 4  # sum 7 → 11 - 7 = 4


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("012033", True),
        ("342076", True),
        ("142051", True),
        ("131148", True),
        ("012034", False),
        ("12033", False),
    ],
)
def test_municipality_code_check_digit(code, valid):
    assert normalize.municipality_code_is_valid(code) is valid


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("〒047-0032", "0470032"),
        ("０４７－００３２", "0470032"),
        ("0470032", "0470032"),
        ("047-003", ""),
    ],
)
def test_normalize_postal_code(raw, expected):
    assert normalize.normalize_postal_code(raw) == expected
