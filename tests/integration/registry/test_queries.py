"""Queries, reports and seeding on the Copenhagen seed data, against the real broker and Valkey."""

from __future__ import annotations

import asyncio

import pytest

from services.contracts import EventType
from services.plumbing.runtime import ServiceRuntime
from services.plumbing.settings import HubSettings
from services.registry.seed import load_seed
from services.registry.settings import DEFAULT_SEED_FILE, RegistrySettings
from services.registry.store import RegistryStore
from tests.integration.registry.conftest import Registry

pytestmark = pytest.mark.integration

SEED = load_seed(DEFAULT_SEED_FILE)


async def _ids(registry: Registry, path: str, **params: str) -> list[str]:
    response = await registry.client.get(path, params=params)
    assert response.status_code == 200, response.text
    return [item["entry_id"] for item in response.json()]


async def test_seeding_publishes_one_event_per_record(seeded: Registry) -> None:
    events = await seeded.events(expect=len(SEED))
    assert len(events) == len(SEED)
    assert await seeded.events_after(events) == []
    assert {e.type for e in events} == {
        EventType.REGISTRY_SERVICE_UPSERTED,
        EventType.REGISTRY_SITE_UPSERTED,
        EventType.REGISTRY_ENTRY_UPSERTED,
    }


async def test_two_replicas_seeding_together_seed_once(hub_settings: HubSettings) -> None:
    settings = RegistrySettings(hub=hub_settings)
    runtimes = [ServiceRuntime(settings), ServiceRuntime(settings)]
    try:
        stores = [RegistryStore(r.redis, hub_settings, r.outbox, settings.source) for r in runtimes]
        results = await asyncio.gather(*(store.seed_if_empty(SEED) for store in stores))
        assert sorted(results) == [False, True]
        assert await runtimes[0].outbox.depth() == len(SEED)
        assert not await stores[0].seed_if_empty(SEED)
    finally:
        for runtime in runtimes:
            await runtime.redis.aclose()


async def test_coverage_report_on_the_seed_finds_vanlose_without_citizen_service(
    seeded: Registry,
) -> None:
    report = (await seeded.client.get("/reports/coverage")).json()
    assert report["missing"] == ["vanlose"]
    by_district = {d["district"]: d for d in report["districts"]}
    assert len(by_district) == 10
    assert by_district["bronshoj-husum"]["citizen_service_entries"] == [
        "kvik-bronshoj",
        "mobil-tingbjerg",
    ]
    assert by_district["amager-vest"]["citizen_service_entries"] == [
        "bs-islands-brygge",
        "kes-islands-brygge",
    ]


async def test_opening_the_planned_kvik_point_covers_the_last_district(seeded: Registry) -> None:
    entry = await seeded.client.get("/entries/kvik-vanlose")
    body = {k: v for k, v in entry.json().items() if k not in {"version", "retired"}}
    response = await seeded.client.put(
        "/entries/kvik-vanlose",
        json={**body, "status": "open"},
        headers={**seeded.writer, "If-Match": entry.headers["ETag"]},
    )
    assert response.status_code == 200, response.text
    assert (await seeded.client.get("/reports/coverage")).json()["missing"] == []


async def test_colocation_report_on_the_seed_lists_the_shared_sites(seeded: Registry) -> None:
    report = (await seeded.client.get("/reports/co-location")).json()
    shared = {s["site_id"]: s["administrations"] for s in report["shared_sites"]}
    assert shared["site-islands-brygge-37"] == ["bif", "okf", "tmf"]
    assert shared["site-sundhedshus-amager"] == ["sof", "suf"]
    assert shared["site-valby-faelles-center"] == ["okf", "sof", "suf"]
    assert shared["site-dortheavej"] == ["kff", "okf"]
    candidates = {c["district"]: c["separate_sites"] for c in report["candidates"]}
    assert candidates["osterbro"] == {
        "sof": ["site-osterbro-socialcenter"],
        "suf": ["site-osterbro-pok"],
    }


async def test_entries_filter_by_district_kind_and_service(seeded: Registry) -> None:
    ids = await _ids(
        seeded, "/entries", district="valby", kind="citizen_service_centre", service="passport"
    )
    assert ids == ["bs-valby"]
    assert await _ids(seeded, "/entries", administration="tmf") == ["kes-islands-brygge"]
    assert await _ids(seeded, "/entries", status="planned") == ["kvik-stadsarkivet", "kvik-vanlose"]
    local_democracy = await _ids(seeded, "/entries", entry_type="local_democracy")
    assert local_democracy == ["lu-amager-ost"]


async def test_open_at_follows_copenhagen_time_across_the_dst_change(seeded: Registry) -> None:
    # Borgerservice Valby opens at 10:00 local. Friday 27 March 2026 08:30 UTC is 09:30 CET
    # (closed); Monday 30 March 08:30 UTC is 10:30 CEST (open).
    params = {"kind": "citizen_service_centre", "district": "valby"}
    assert await _ids(seeded, "/entries", open_at="2026-03-27T08:30:00Z", **params) == []
    assert await _ids(seeded, "/entries", open_at="2026-03-30T08:30:00Z", **params) == ["bs-valby"]


async def test_open_at_on_a_public_holiday_leaves_only_the_digital_channel(
    seeded: Registry,
) -> None:
    # Christmas Day 2026 is a Friday; a time without offset is Copenhagen time.
    open_ids = await _ids(seeded, "/entries", open_at="2026-12-25T11:00:00")
    assert open_ids == ["digital-selvbetjening"]
    normal_friday = await _ids(seeded, "/entries", open_at="2026-12-18T11:00:00")
    assert "bs-valby" in normal_friday


async def test_nearest_entries_offering_a_service_come_nearest_first(seeded: Registry) -> None:
    # Standing at Islands Brygge, asking for a passport on an ordinary Tuesday at 11:00.
    response = await seeded.client.get(
        "/entries/nearest",
        params={
            "latitude": "55.6660",
            "longitude": "12.5775",
            "service": "passport",
            "open_at": "2026-11-24T11:00:00+01:00",
            "limit": "3",
        },
    )
    found = response.json()
    assert found[0]["entry"]["entry_id"] == "bs-islands-brygge"
    distances = [f["distance_km"] for f in found]
    assert distances == sorted(distances)
    assert all("passport" in f["entry"]["services"] for f in found)
