"""The desk-ticket rules: what a ticket counts as, its desk figures, percentiles from the
histogram buckets, and what intake refuses."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from services.contracts import Channel, ContactMode, District, TicketOutcome
from services.contracts.payloads.desk import DeskTicket
from services.metrics import tickets
from services.metrics.tickets import (
    SERVICE_BUCKETS,
    WAIT_BUCKETS,
    DeskFigures,
    Histogram,
    bucket_label,
    contacts_of,
    duplicate_problems,
    figures_by_entry_and_service,
    figures_of,
    percentile,
    ticket_problems,
)

CPH = dt.timezone(dt.timedelta(hours=1))
ISSUED = dt.datetime(2024, 1, 15, 9, 0, tzinfo=CPH)
NOW = dt.datetime(2024, 1, 16, 12, 0, tzinfo=CPH)
SKEW = dt.timedelta(minutes=5)


def _ticket(**changes: Any) -> DeskTicket:
    fields: dict[str, Any] = {
        "ticket_id": "q-0042",
        "service": "passport",
        "desk_id": "desk-04",
        "staff_id": "staff-a1b2c3",
        "issued_at": ISSUED,
        "called_at": ISSUED + dt.timedelta(minutes=12),
        "served_at": ISSUED + dt.timedelta(minutes=13),
        "ended_at": ISSUED + dt.timedelta(minutes=21),
        "outcome": TicketOutcome.SERVED,
    }
    return DeskTicket.model_validate({**fields, **changes})


def _no_show(called: bool = True) -> DeskTicket:
    return _ticket(
        outcome=TicketOutcome.NO_SHOW,
        served_at=None,
        staff_id=None,
        desk_id=None,
        called_at=ISSUED + dt.timedelta(minutes=30) if called else None,
        ended_at=ISSUED + dt.timedelta(minutes=33),
    )


def test_a_served_ticket_is_one_assisted_counter_contact_at_its_entry_and_site() -> None:
    [contact] = contacts_of("bsc-valby", "site-valby", District.VALBY, [_ticket()])
    assert (contact.channel, contact.mode, contact.count) == (
        Channel.COUNTER,
        ContactMode.ASSISTED,
        1,
    )
    assert (contact.entry_id, contact.site_id, contact.district, contact.service) == (
        "bsc-valby",
        "site-valby",
        District.VALBY,
        "passport",
    )


def test_a_no_show_is_no_contact() -> None:
    assert contacts_of("bsc-valby", None, District.VALBY, [_no_show()]) == []


def test_a_ticket_counts_on_the_copenhagen_day_it_ended() -> None:
    # 23:30 UTC on 15 January is 00:30 on the 16th in Copenhagen.
    late = dt.datetime(2024, 1, 15, 23, 30, tzinfo=dt.UTC)
    ticket = _ticket(
        issued_at=late - dt.timedelta(minutes=40),
        called_at=late - dt.timedelta(minutes=20),
        served_at=late - dt.timedelta(minutes=19),
        ended_at=late,
    )
    [contact] = contacts_of("bsc-valby", None, District.VALBY, [ticket])
    assert contact.day == dt.date(2024, 1, 16)


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(0, "60"), (60, "60"), (60.5, "120"), (7200, "7200"), (7201, "+Inf")],
)
def test_a_wait_falls_in_the_first_bucket_not_below_it(seconds: float, label: str) -> None:
    assert bucket_label(seconds, WAIT_BUCKETS) == label


def test_a_served_ticket_adds_its_wait_and_service_time_to_one_bucket_each() -> None:
    # waited 12 min (720 s -> the 900 s bucket), served 9 min from the call (540 s -> 600 s)
    assert dict(figures_of(_ticket())) == {
        "served": 1,
        "wait|900": 1,
        "wait_count": 1,
        "wait_ms": 720_000,
        "service|600": 1,
        "service_count": 1,
        "service_ms": 540_000,
    }


def test_a_called_no_show_has_a_wait_but_no_service_time() -> None:
    assert dict(figures_of(_no_show())) == {
        "no_show": 1,
        "wait|1800": 1,
        "wait_count": 1,
        "wait_ms": 1_800_000,
    }


def test_a_no_show_never_called_has_no_times() -> None:
    assert figures_of(_no_show(called=False)) == [("no_show", 1)]


def _histogram(counts: dict[float, int]) -> Histogram:
    return Histogram(WAIT_BUCKETS, buckets=dict(counts), count=sum(counts.values()))


def test_a_percentile_is_interpolated_inside_its_bucket() -> None:
    # 10 waits: 4 up to 60 s, 6 in (60, 120]. The median's rank 5 is the first of the six
    # in the second bucket: 60 + 60 x 1/6 = 70 s; p90 (rank 9): 60 + 60 x 5/6 = 110 s.
    histogram = _histogram({60: 4, 120: 6})
    assert percentile(histogram, 0.5) == pytest.approx(70.0)
    assert percentile(histogram, 0.9) == pytest.approx(110.0)


def test_a_percentile_in_the_first_bucket_starts_from_zero() -> None:
    assert percentile(_histogram({60: 10}), 0.5) == pytest.approx(30.0)


def test_a_percentile_in_the_open_top_bucket_is_the_highest_bound() -> None:
    assert percentile(_histogram({60: 1, float("inf"): 9}), 0.5) == WAIT_BUCKETS[-1]


def test_no_observations_have_no_percentile_and_no_mean() -> None:
    empty = Histogram(SERVICE_BUCKETS)
    assert percentile(empty, 0.5) is None
    assert empty.mean_seconds is None


def test_stored_day_figures_sum_per_entry_and_service_with_filters() -> None:
    day1 = {
        ("bsc-valby", "passport", "served"): 3,
        ("bsc-valby", "passport", "wait|300"): 3,
        ("bsc-valby", "passport", "wait_count"): 3,
        ("bsc-valby", "passport", "wait_ms"): 540_000,
        ("bsc-valby", "tax", "no_show"): 1,
        ("bsc-norrebro", "passport", "served"): 5,
    }
    day2 = {("bsc-valby", "passport", "served"): 1, ("bsc-valby", "passport", "no_show"): 1}
    summed = figures_by_entry_and_service([day1, day2])
    passport = summed["bsc-valby"]["passport"]
    assert (passport.served, passport.no_shows, passport.no_show_rate) == (4, 1, 0.2)
    assert passport.waiting.buckets == {300.0: 3}
    assert passport.waiting.mean_seconds == 180.0
    assert set(figures_by_entry_and_service([day1, day2], entry_id="bsc-norrebro")) == {
        "bsc-norrebro"
    }
    assert set(figures_by_entry_and_service([day1], service="tax")["bsc-valby"]) == {"tax"}


def test_a_centre_total_adds_its_services() -> None:
    one, other = DeskFigures(served=2), DeskFigures(served=1, no_shows=1)
    one.waiting.buckets[60.0] = 2
    other.waiting.buckets[60.0] = 1
    total = tickets.total_of([one, other])
    assert (total.served, total.no_shows, total.waiting.buckets) == (3, 1, {60.0: 3})


# -- what intake refuses -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _TicketIn:
    """A ticket as a request carries it: no contract validation yet."""

    ticket_id: str | None
    desk_id: str | None
    staff_id: str | None
    outcome: TicketOutcome
    issued_at: dt.datetime
    called_at: dt.datetime | None
    served_at: dt.datetime | None
    ended_at: dt.datetime


def _In(**changes: Any) -> _TicketIn:
    fields = _ticket().model_dump(exclude={"service"})
    return _TicketIn(**{**fields, **changes})


def _fields(problems: list[tuple[str, str]]) -> list[str]:
    return [field for field, _ in problems]


def test_a_good_ticket_has_no_problems() -> None:
    assert ticket_problems(_In(), NOW, SKEW, dt.date(2024, 1, 15)) == []


def test_served_before_issued_names_the_field_out_of_order() -> None:
    problems = ticket_problems(
        _In(served_at=ISSUED - dt.timedelta(minutes=1)), NOW, SKEW, dt.date(2024, 1, 15)
    )
    assert _fields(problems) == ["served_at"]
    assert "order" in problems[0][1]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"called_at": ISSUED - dt.timedelta(seconds=1)}, "called_at"),
        ({"ended_at": ISSUED + dt.timedelta(minutes=12, seconds=30)}, "ended_at"),
        ({"served_at": ISSUED + dt.timedelta(minutes=11)}, "served_at"),
    ],
)
def test_every_order_violation_is_refused(changes: dict[str, Any], field: str) -> None:
    assert _fields(ticket_problems(_In(**changes), NOW, SKEW)) == [field]


def test_a_served_ticket_needs_a_call_a_start_and_a_desk() -> None:
    problems = ticket_problems(_In(called_at=None, served_at=None, desk_id=None), NOW, SKEW)
    assert _fields(problems) == ["called_at", "served_at", "desk_id"]


def test_a_no_show_has_no_served_at() -> None:
    assert _fields(ticket_problems(_In(outcome=TicketOutcome.NO_SHOW), NOW, SKEW)) == ["served_at"]


def test_a_ticket_longer_than_a_day_is_refused() -> None:
    problems = ticket_problems(_In(ended_at=ISSUED + dt.timedelta(hours=25)), NOW, SKEW)
    assert _fields(problems) == ["ended_at"]


def test_times_in_the_future_are_refused_beyond_the_clock_skew() -> None:
    now = ISSUED + dt.timedelta(minutes=18)  # ended_at is 3 minutes ahead: within the skew
    assert ticket_problems(_In(), now, SKEW) == []
    early = ISSUED + dt.timedelta(minutes=10)  # called_at 2, served_at 3, ended_at 11 min ahead
    assert _fields(ticket_problems(_In(), early, SKEW)) == ["ended_at"]


@pytest.mark.parametrize("field", ["desk_id", "staff_id", "ticket_id"])
def test_an_id_that_looks_like_a_cpr_number_is_refused_by_name(field: str) -> None:
    value = "staff-0102031234" if field == "staff_id" else "010203-1234"
    problems = ticket_problems(_In(**{field: value}), NOW, SKEW)
    assert _fields(problems) == [field]
    assert "0102031234" not in problems[0][1]
    assert "010203-1234" not in problems[0][1]


def test_a_ticket_that_ended_on_another_day_than_the_file_is_refused() -> None:
    problems = ticket_problems(_In(), NOW, SKEW, dt.date(2024, 1, 14))
    assert _fields(problems) == ["ended_at"]
    assert "2024-01-15" in problems[0][1]


def test_duplicate_ticket_ids_name_the_first_appearance() -> None:
    assert duplicate_problems(["a", "b", "a", "c", "b"]) == [(2, 0), (4, 1)]
