"""``GET /export/hsds`` on the seeded registry: valid HSDS 3, with every open entry."""

from __future__ import annotations

import pytest

from tests.integration.registry.conftest import Registry
from tests.unit.registry.hsds_schemas import validation_errors

pytestmark = pytest.mark.integration


async def test_the_hsds_export_of_the_seeded_registry_validates(seeded: Registry) -> None:
    response = await seeded.client.get("/export/hsds")
    assert response.status_code == 200
    document = response.json()
    assert validation_errors(document) == []
    entries = (await seeded.client.get("/entries")).json()
    assert len(document["services"]) == len(entries)
    valby = next(s for s in document["services"] if s["name"] == "Borgerservice Valby")
    (at_site,) = valby["service_at_locations"]
    assert at_site["location"]["addresses"][0]["address_1"] == "Valgårdsvej 4"
    assert {s["byday"] for s in at_site["schedules"]} == {"MO", "TU", "WE", "TH", "FR"}
