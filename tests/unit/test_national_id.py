"""normalise_national_id: 10 to 16 ASCII digits, human separators stripped, nothing else."""

from __future__ import annotations

import pytest

from passport_sync.mapping.national_id import normalise_national_id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1199880012345678", "1199880012345678"),
        ("0123456789", "0123456789"),
        ("0000000000123456", "0000000000123456"),
        ("1 1998 8 0012345 6 78", "1199880012345678"),
        ("1-1998-8-0012345-6-78", "1199880012345678"),
        ("1.1998.8.0012345.6.78", "1199880012345678"),
        ("1/1998/8/0012345/6/78", "1199880012345678"),
        ("  1199880012345678  ", "1199880012345678"),
        ("1 - 1998 / 8 . 0012345", "1199880012345"),
        ("1199880012\t345678\n", "1199880012345678"),
    ],
)
def test_valid_ids_are_normalised_to_ascii_digits(raw: str, expected: str) -> None:
    assert normalise_national_id(raw) == expected


def test_leading_zeros_are_kept() -> None:
    result = normalise_national_id("00-1234-5678")
    assert result == "0012345678"
    assert result is not None and len(result) == 10


@pytest.mark.parametrize("length", [10, 16])
def test_length_bounds_are_inclusive(length: int) -> None:
    raw = "9" * length
    assert normalise_national_id(raw) == raw


@pytest.mark.parametrize(
    "raw",
    [
        "123456789",  # 9 digits
        "12345678901234567",  # 17 digits
        "1-2-3-4-5-6-7-8-9",  # separators do not count towards the length
        "",
        "   ",
        "----------",
    ],
)
def test_wrong_length_is_rejected(raw: str) -> None:
    assert normalise_national_id(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        "ID1199880012345678",
        "1199880012345678A",
        "11998800I2345678",  # capital i typed for a one
        "1234567890'; DROP TABLE patient; --",
        "1234567890';DROP",
        "1234567890%",
        "1234567890_",
        "+1234567890",
        "1234567890,12",
        "12345,67890",
    ],
)
def test_letters_and_other_symbols_are_rejected_not_stripped(raw: str) -> None:
    assert normalise_national_id(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        "١٢٣٤٥٦٧٨٩٠",  # Arabic-Indic digits
        "۱۲۳۴۵۶۷۸۹۰",  # Extended Arabic-Indic (Persian) digits
        "１２３４５６７８９０",  # fullwidth digits
        "१२३४५६७८९०",  # Devanagari digits
        "123456789٠",  # one non-ASCII digit among ASCII ones
    ],
)
def test_non_ascii_digits_are_rejected_not_converted(raw: str) -> None:
    assert normalise_national_id(raw) is None


def test_none_is_none() -> None:
    assert normalise_national_id(None) is None
