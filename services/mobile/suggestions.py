"""Planning help: where to go next, from the districts' digital shares (the metrics service's
share events), the time since the last visit and the kinds of place the seeds name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.contracts import District
from services.mobile import domain
from services.mobile.domain import Place
from services.mobile.service import utc_now
from services.mobile.store import MobileStore


@dataclass(frozen=True)
class Suggestions:
    """Where to go next, ranked, as of ``computed_at``."""

    computed_at: dt.datetime
    districts: list[domain.Suggestion]
    places: list[domain.Suggestion]


async def suggest_next(store: MobileStore, limit: int) -> Suggestions:
    """Districts and places to visit next, ranked by low digital share, time since the last
    visit and the kind of place; each with the reasons that produced its score."""
    now = utc_now()
    shares = await store.shares()
    visited = {p.place_id: p for p in await store.places()}
    places: dict[str, Place] = {}
    for site in await store.sites():
        known = visited.get(site.site_id)
        kind = known.kind if known else domain.site_kind(await store.entries_at(site.site_id))
        places[site.site_id] = Place(
            place_id=site.site_id,
            site_id=site.site_id,
            name=site.name,
            district=site.district,
            latitude=site.latitude,
            longitude=site.longitude,
            kind=kind,
        )
    for place in visited.values():
        if place.site_id is None:
            places[place.place_id] = place
    place_last = await store.last_visits("place", places)
    district_last = {
        District(k): v
        for k, v in (await store.last_visits("district", [d.value for d in District])).items()
    }
    return Suggestions(
        computed_at=now,
        districts=domain.suggest_districts(shares, district_last, now)[:limit],
        places=domain.suggest_places(places.values(), shares, place_last, now)[:limit],
    )
