"""The request bodies refuse what must never reach a visit or an event."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.mobile.schemas import ContactIn, SeriesException, VisitIn

PLACE = {"name": "Valby Station", "district": "valby", "latitude": 55.66, "longitude": 12.51}
VISIT: dict[str, Any] = {
    "place": PLACE,
    "starts_at": "2026-12-01T10:00:00",
    "ends_at": "2026-12-01T12:00:00",
    "services": ["passport"],
}


def test_a_plan_names_exactly_one_place() -> None:
    with pytest.raises(ValidationError, match="exactly one of site_id and place"):
        VisitIn.model_validate({**VISIT, "site_id": "site-valby"})
    with pytest.raises(ValidationError, match="exactly one of site_id and place"):
        VisitIn.model_validate({**VISIT, "place": None})


@pytest.mark.parametrize("staff", ["Jens Hansen", "staff-ABCDEF", "staff-abc", "12345678"])
def test_staff_must_be_pseudonymous_ids(staff: str) -> None:
    with pytest.raises(ValidationError):
        VisitIn.model_validate({**VISIT, "staff": [staff]})


def test_a_cpr_number_in_a_reference_is_refused() -> None:
    with pytest.raises(ValidationError, match="CPR"):
        ContactIn.model_validate(
            {"service": "passport", "mode": "assisted", "booking_ref": "bk-010170-1234"}
        )


def test_an_exception_either_cancels_or_moves() -> None:
    with pytest.raises(ValidationError):
        SeriesException.model_validate({"date": "2026-12-01"})
    with pytest.raises(ValidationError):
        SeriesException.model_validate(
            {"date": "2026-12-01", "cancelled": True, "moved_to": "2026-12-02T10:00:00"}
        )
