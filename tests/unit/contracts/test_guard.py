"""The CPR guard: catches CPR-looking values anywhere, leaves ids, dates and times alone."""

from __future__ import annotations

import uuid
from enum import StrEnum

import pytest
from pydantic import BaseModel

from services.contracts import find_cpr


@pytest.mark.parametrize(
    "value",
    [
        "010203-1234",
        "0102031234",
        "borger 010203-1234",
        "cpr:0102031234.",
        "311299-0000",
        "staff-0102031234",
        "id_0102031234",
    ],
)
def test_a_cpr_number_is_found(value: str) -> None:
    assert find_cpr(value) is not None


def test_the_match_is_the_cpr_number_itself() -> None:
    assert find_cpr("borger 010203-1234 ringede") == "010203-1234"


@pytest.mark.parametrize(
    "value",
    [
        str(uuid.uuid4()),
        "ab010203-1234-4c5d-8e9f-0a1b2c3d4e5f",
        "2024-01-15",
        "2024-01-15T10:00:00+01:00",
        "2024-01-15T10:00:00.123456Z",
        "20240115",
        "010203123",
        "01020312345",
        "320199-1234",
        "011399-1234",
        "000199-1234",
        "010003-1234",
        "010203 1234",
        "abc0102031234",
        "kiosk-valby-01",
        "",
    ],
)
def test_a_value_that_is_no_cpr_number_passes(value: str) -> None:
    assert find_cpr(value) is None


def test_a_cpr_number_is_found_in_nested_lists_and_dicts() -> None:
    assert find_cpr({"steps": ["a", ["b", ("c", "010203-1234")]]}) == "010203-1234"
    assert find_cpr([{"note": {"deep": ["0102031234"]}}]) == "0102031234"


def test_a_cpr_number_is_found_in_a_dict_key() -> None:
    assert find_cpr({"010203-1234": 1}) == "010203-1234"


def test_a_cpr_number_is_found_in_a_nested_model() -> None:
    class Inner(BaseModel):
        value: str

    class Outer(BaseModel):
        inner: list[Inner]

    assert find_cpr(Outer(inner=[Inner(value="ok"), Inner(value="010203-1234")])) is not None


def test_values_that_are_not_strings_are_skipped() -> None:
    assert find_cpr(102031234) is None
    assert find_cpr(None) is None
    assert find_cpr(uuid.UUID(int=102031234)) is None


class _Code(StrEnum):
    CPR_LIKE = "id_0102031234"


@pytest.mark.parametrize(
    ("value", "found"),
    [
        (_Code.CPR_LIKE, "0102031234"),
        (("ok", "010203-1234"), "010203-1234"),
        ({"ok", "010203-1234"}, "010203-1234"),
        (frozenset({"010203-1234"}), "010203-1234"),
        (["ok", ("nested", ["010203-1234"])], "010203-1234"),
    ],
)
def test_a_cpr_number_is_found_in_string_subclasses_and_every_plain_collection(
    value: object, found: str
) -> None:
    assert find_cpr(value) == found
