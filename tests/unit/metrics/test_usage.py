"""Usage per building and entry point: usage per entry and site, contacts per open hour (the
hours themselves: tests/unit/contracts/test_opening_hours.py), the ranking."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.contracts import (
    Administration,
    Channel,
    ContactMode,
    District,
    EntryKind,
    EntryStatus,
    OpeningHours,
)
from services.contracts.payloads.registry import OpeningException, WeeklyOpening
from services.metrics.place_usage import (
    Measure,
    Order,
    Tally,
    UsageFilter,
    entry_usage,
    ranking,
    site_usage,
)
from services.metrics.store import (
    RegistryEntry,
    RegistrySite,
    UsageCell,
    parse_usage_field,
)

WEEKDAYS_10_TO_17 = OpeningHours(
    weekly=tuple(WeeklyOpening(weekday=day, opens="10:00", closes="17:00") for day in range(5))
)
MONDAY = dt.date(2024, 1, 15)


# -- usage per entry and site ------------------------------------------------------------------


def _entry(**changes: Any) -> RegistryEntry:
    fields: dict[str, Any] = {
        "kind": EntryKind.KVIK_POINT,
        "district": District.VALBY,
        "status": EntryStatus.OPEN,
        "site_id": "site-valby-library",
        "name": "KVIK Valby Bibliotek",
        "administration": Administration.KFF,
        "opening_hours": WEEKDAYS_10_TO_17,
        "staff_help": ("video",),
    }
    return RegistryEntry(**{**fields, **changes})


def _cell(
    entry: str | None, channel: Channel, mode: ContactMode, count: int, **kw: Any
) -> UsageCell:
    return UsageCell(
        district=kw.get("district", District.VALBY),
        entry_id=entry,
        site_id=kw.get("site"),
        channel=channel,
        mode=mode,
        service=kw.get("service", ""),
        count=count,
    )


ENTRIES = {
    "kvik-valby": _entry(),
    "csc-valby": _entry(
        kind=EntryKind.CITIZEN_SERVICE_CENTRE,
        name="Borgerservice Valby",
        administration=Administration.KFF,
    ),
    "job-valby": _entry(
        kind=EntryKind.JOB_CENTRE, name="Jobcenter Valby", administration=Administration.BIF
    ),
    "kvik-quiet": _entry(site_id="site-quiet", name="KVIK quiet"),
    "kvik-closed": _entry(site_id="site-quiet", status=EntryStatus.TEMPORARILY_CLOSED),
    "phone": _entry(kind=EntryKind.CONTACT_CENTRE, site_id=None, district=None),
}
SITES = {
    "site-valby-library": RegistrySite(
        "Valby Kulturhus", District.VALBY, Administration.KFF, 55.66, 12.51
    ),
    "site-quiet": RegistrySite("Quiet", District.VALBY, Administration.KFF, 55.66, 12.52),
}
CELLS = [
    _cell("kvik-valby", Channel.KVIK, ContactMode.SELF_SERVICE, 30),
    _cell("kvik-valby", Channel.KVIK, ContactMode.ASSISTED, 5),
    _cell("csc-valby", Channel.COUNTER, ContactMode.ASSISTED, 12, site="site-valby-library"),
    _cell("job-valby", Channel.COUNTER, ContactMode.ASSISTED, 4, site="site-valby-library"),
    _cell(None, Channel.MOBILE, ContactMode.ASSISTED, 3, site="site-valby-library"),
    _cell("kvik-unknown", Channel.KVIK, ContactMode.SELF_SERVICE, 2, district=District.BISPEBJERG),
]
WEEK = (MONDAY, MONDAY + dt.timedelta(days=6))


def test_a_usage_field_round_trips_with_empty_parts_as_none() -> None:
    cell = parse_usage_field(b"valby|kvik-valby||kvik|self_service|passport", 4)
    assert (cell.entry_id, cell.site_id, cell.service, cell.count) == (
        "kvik-valby",
        None,
        "passport",
        4,
    )
    assert parse_usage_field("valby||site-x|mobile|assisted", 1).service == ""


def test_an_entry_counts_its_channels_and_its_contacts_per_open_hour() -> None:
    usage = entry_usage(CELLS, ENTRIES, UsageFilter(), *WEEK)
    kvik = usage["kvik-valby"]
    assert (kvik.tally.self_service, kvik.tally.assisted, kvik.tally.total) == (30, 5, 35)
    assert kvik.open_hours == 35.0
    assert kvik.per_open_hour == 1.0


def test_open_place_bound_entries_without_contacts_are_listed_with_zeros() -> None:
    usage = entry_usage(CELLS, ENTRIES, UsageFilter(), *WEEK)
    assert usage["kvik-quiet"].tally.total == 0
    assert "kvik-closed" not in usage  # not open now, no contacts
    assert "phone" not in usage  # no building
    assert usage["kvik-unknown"].entry is None  # contacts at an entry the registry lacks
    assert usage["kvik-unknown"].open_hours is None


def test_a_channel_filter_lists_only_entries_of_that_channel_without_contacts() -> None:
    usage = entry_usage(CELLS, ENTRIES, UsageFilter(channel=Channel.COUNTER), *WEEK)
    assert set(usage) == {"csc-valby", "job-valby"}
    assert usage["csc-valby"].tally.channels[Channel.KVIK][ContactMode.SELF_SERVICE] == 0


def test_a_district_filter_keeps_the_places_of_that_district() -> None:
    usage = entry_usage(CELLS, ENTRIES, UsageFilter(district=District.BISPEBJERG), *WEEK)
    assert set(usage) == {"kvik-unknown"}


def test_a_site_counts_its_entries_and_contacts_without_one_split_by_administration() -> None:
    sites, unlocated = site_usage(CELLS, ENTRIES, SITES, UsageFilter())
    library = sites["site-valby-library"]
    assert library.tally.total == 35 + 12 + 4 + 3  # the KVIK entry's site from the registry
    parts = {a: p.tally.total for a, p in library.administrations.items()}
    assert parts == {Administration.KFF: 47, Administration.BIF: 4, None: 3}
    assert sum(parts.values()) == library.tally.total
    assert library.colocated
    assert library.entries == ["csc-valby", "job-valby", "kvik-valby"]
    assert unlocated.total == 2  # the unknown entry has no known site
    assert not sites["site-quiet"].colocated
    assert sites["site-quiet"].tally.total == 0


def test_a_tally_is_the_sum_of_its_channels() -> None:
    tally = Tally()
    tally.add(Channel.KVIK, ContactMode.SELF_SERVICE, 3)
    tally.add(Channel.MOBILE, ContactMode.ASSISTED, 2)
    assert tally.total == 5 == sum(sum(m.values()) for m in tally.channels.values())


# -- ranking -----------------------------------------------------------------------------------


def test_the_most_used_entries_come_first() -> None:
    usage = entry_usage(CELLS, ENTRIES, UsageFilter(), *WEEK)
    top = ranking(usage.values(), Order.MOST, Measure.CONTACTS, 2)
    assert [p.entry_id for p in top] == ["kvik-valby", "csc-valby"]


def test_an_open_entry_without_contacts_is_the_least_used() -> None:
    usage = entry_usage(CELLS, ENTRIES, UsageFilter(), *WEEK)
    least = ranking(usage.values(), Order.LEAST, Measure.CONTACTS, 2)
    assert [p.entry_id for p in least] == ["kvik-quiet", "kvik-unknown"]


def test_an_entry_closed_all_period_is_not_ranked() -> None:
    closed_week = OpeningHours(
        weekly=WEEKDAYS_10_TO_17.weekly,
        exceptions=tuple(
            OpeningException(date=WEEK[0] + dt.timedelta(days=n), closed=True) for n in range(7)
        ),
    )
    entries = {**ENTRIES, "kvik-quiet": _entry(site_id="site-quiet", opening_hours=closed_week)}
    usage = entry_usage(CELLS, entries, UsageFilter(), *WEEK)
    assert usage["kvik-quiet"].open_hours == 0.0
    least = ranking(usage.values(), Order.LEAST, Measure.CONTACTS, 10)
    assert "kvik-quiet" not in [p.entry_id for p in least]


def test_ranking_per_open_hour_is_fair_to_short_hours() -> None:
    short = OpeningHours(weekly=(WeeklyOpening(weekday=0, opens="10:00", closes="12:00"),))
    entries = {
        **ENTRIES,
        "csc-valby": _entry(kind=EntryKind.CITIZEN_SERVICE_CENTRE, opening_hours=short),
    }
    usage = entry_usage(CELLS, entries, UsageFilter(), *WEEK)
    top = ranking(usage.values(), Order.MOST, Measure.PER_OPEN_HOUR, 1)
    assert [(p.entry_id, p.per_open_hour) for p in top] == [("csc-valby", 6.0)]
    # Entries without known hours take no part in a per-hour ranking.
    ranked = ranking(usage.values(), Order.LEAST, Measure.PER_OPEN_HOUR, 10)
    assert "kvik-unknown" not in [p.entry_id for p in ranked]
