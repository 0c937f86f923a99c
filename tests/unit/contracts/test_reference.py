"""Reference data: wire values are ASCII and stable, display names are Danish."""

from __future__ import annotations

from enum import StrEnum

import pytest

from services.contracts import reference
from services.contracts.reference import Administration, District

ENUMS: list[type[StrEnum]] = [
    value
    for value in vars(reference).values()
    if isinstance(value, type) and issubclass(value, StrEnum) and value is not StrEnum
]


def test_there_are_ten_districts_with_their_danish_names() -> None:
    assert [district.display_name for district in District] == [
        "Indre By",
        "Østerbro",
        "Nørrebro",
        "Vesterbro/Kongens Enghave",
        "Valby",
        "Vanløse",
        "Brønshøj-Husum",
        "Bispebjerg",
        "Amager Øst",
        "Amager Vest",
    ]


def test_district_wire_values_are_ascii_slugs() -> None:
    assert District.OSTERBRO.value == "osterbro"
    assert District.VESTERBRO_KONGENS_ENGHAVE.value == "vesterbro-kongens-enghave"


def test_there_are_seven_administrations_with_english_and_danish_names() -> None:
    assert len(Administration) == 7
    assert Administration.OKF.abbreviation == "ØKF"
    assert Administration.OKF.english_name == "Finance Administration"
    assert Administration.OKF.danish_name == "Økonomiforvaltningen"
    assert Administration.SUF.danish_name == "Sundheds- og Omsorgsforvaltningen"
    assert Administration.TMF.display_name == "Teknik- og Miljøforvaltningen"
    assert all(admin.english_name and admin.danish_name for admin in Administration)


@pytest.mark.parametrize("enum", ENUMS, ids=lambda enum: enum.__name__)
def test_every_wire_value_is_lowercase_ascii(enum: type[StrEnum]) -> None:
    for member in enum:
        assert member.value.isascii()
        assert member.value == member.value.lower()
