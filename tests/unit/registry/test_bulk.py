"""Parsing and planning bulk imports, without storage."""

from __future__ import annotations

from typing import Any

import pytest

from services.registry import bulk
from services.registry.store import Kind

ENTRIES_CSV = (
    "entry_id,site_id,name,kind,entry_type,administration,coverage,district,services,"
    "staff_help,status,weekly\n"
    "kvik-x,,KVIK X,kvik_point,service_and_offers,okf,local,valby,passport; digital_id,"
    "video,open,0 10:00-17:00; 3 10:00-18:00\n"
)


def test_a_csv_entry_row_becomes_the_json_shape() -> None:
    (row,) = bulk.parse_csv(ENTRIES_CSV, Kind.ENTRY)
    assert row.line == 2
    assert row.data["site_id"] is None
    assert row.data["services"] == ["passport", "digital_id"]
    assert row.data["opening_hours"]["weekly"][1] == {
        "weekday": "3",
        "opens": "10:00",
        "closes": "18:00",
    }


def test_a_csv_without_the_expected_columns_is_refused() -> None:
    with pytest.raises(bulk.ImportRefused) as refused:
        bulk.parse_csv("site_id,name\nx,y\n", Kind.SITE)
    assert "missing columns" in refused.value.problems[0].message


def test_an_entry_may_refer_to_a_site_in_the_same_import_and_is_planned_as_created() -> None:
    sites, entries = bulk.parse_json(
        b'{"sites": [{"site_id": "s1", "name": "S", "address": {"street": "Vej 1",'
        b' "postal_code": "2500", "city": "Valby"}, "district": "valby", "latitude": 55.66,'
        b' "longitude": 12.51, "owner": "kff"}]}'
    )
    entries = bulk.parse_csv(ENTRIES_CSV.replace(",,KVIK", ",s1,KVIK"), Kind.ENTRY)
    plan = bulk.plan_import(sites, entries, {}, {}, {"passport", "digital_id"})
    assert [(c["id"], c["action"]) for c in plan.summary] == [
        ("s1", "created"),
        ("kvik-x", "created"),
    ]


SITE_ROW: dict[str, Any] = {
    "site_id": "s1",
    "name": "S",
    "address": {"street": "Vej 1", "postal_code": "2500", "city": "Valby"},
    "district": "valby",
    "latitude": 55.66,
    "longitude": 12.51,
    "owner": "kff",
}
CPR = "010190-1234"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"name": CPR}, "sites[0].name"),
        ({"site_id": CPR.replace("-", "")}, "sites[0].site_id"),
        ({"address": {**SITE_ROW["address"], "street": f"Vej {CPR}"}}, "sites[0].address.street"),
    ],
)
def test_a_cpr_shaped_site_value_is_a_problem_naming_its_field(
    override: dict[str, object], field: str
) -> None:
    # The edge model lets these through and the contract refuses them: that refusal was a 500.
    rows = [bulk.Row(1, "sites[0]", {**SITE_ROW, **override})]
    with pytest.raises(bulk.ImportRefused) as refused:
        bulk.plan_import(rows, [], {}, {}, set())
    assert [(p.field, p.message) for p in refused.value.problems] == [
        (field, "line 1: looks like a CPR number; personal data is not accepted")
    ]


def test_a_cpr_shaped_entry_name_is_a_problem_naming_its_field() -> None:
    entries = bulk.parse_csv(ENTRIES_CSV.replace("KVIK X", CPR), Kind.ENTRY)
    with pytest.raises(bulk.ImportRefused) as refused:
        bulk.plan_import([], entries, {}, {}, {"passport", "digital_id"})
    assert [p.field for p in refused.value.problems] == ["entries[0].name"]
    assert CPR not in repr(refused.value.problems)
