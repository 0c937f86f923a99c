"""How events become contacts, Copenhagen days, periods and the share (metrics domain)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.contracts import (
    Channel,
    ContactMode,
    ContactRecorded,
    CountReported,
    District,
    EventType,
    HelpChannel,
    SessionAbandoned,
    SessionCompleted,
    SessionReferred,
)
from services.metrics import domain
from services.metrics.domain import CellKey, ContactCount, IntakeLine, Period
from tests.unit.contracts.samples import sample_payload

UTC = dt.UTC


def _completed(**changes: Any) -> SessionCompleted:
    payload = sample_payload(EventType.KVIK_SESSION_COMPLETED)
    return SessionCompleted.model_validate({**payload.model_dump(), **changes})


def _contact(**changes: Any) -> ContactRecorded:
    payload = sample_payload(EventType.MOBILE_CONTACT_RECORDED)
    return ContactRecorded.model_validate({**payload.model_dump(), **changes})


def _report(**changes: Any) -> CountReported:
    payload = sample_payload(EventType.METRICS_COUNT_REPORTED)
    return CountReported.model_validate({**payload.model_dump(), **changes})


def test_a_completed_session_without_help_is_one_kvik_self_service_contact() -> None:
    session = _completed(help=HelpChannel.NONE)
    assert domain.tallies_of_session_completed(session) == [
        ContactCount(
            dt.date(2024, 1, 15),
            District.AMAGER_VEST,
            Channel.KVIK,
            ContactMode.SELF_SERVICE,
            "change_of_address",
            entry_id="entry-kvik-sundby-bibliotek",
        )
    ]


def test_a_kvik_contact_keeps_its_entry_and_leaves_the_site_to_the_registry_copy() -> None:
    (count,) = domain.tallies_of_session_completed(_completed(entry_id="entry-kvik-valby"))
    assert (count.entry_id, count.site_id) == ("entry-kvik-valby", None)


def test_a_mobile_contact_keeps_the_site_and_entry_its_event_names() -> None:
    (count,) = domain.tallies_of_contact_recorded(
        _contact(site_id="site-valby-station", entry_id="entry-mobile-valby-station")
    )
    assert (count.site_id, count.entry_id) == ("site-valby-station", "entry-mobile-valby-station")
    (without,) = domain.tallies_of_contact_recorded(_contact())
    assert (without.site_id, without.entry_id) == (None, None)


def test_a_completed_session_with_any_staff_help_is_assisted() -> None:
    modes = {
        domain.tallies_of_session_completed(_completed(help=help_))[0].mode
        for help_ in (HelpChannel.VIDEO, HelpChannel.PHONE, HelpChannel.IN_PERSON)
    }
    assert modes == {ContactMode.ASSISTED}


def test_an_abandoned_session_is_an_abandonment_on_its_day() -> None:
    session = sample_payload(EventType.KVIK_SESSION_ABANDONED)
    assert isinstance(session, SessionAbandoned)
    assert domain.abandonment_of(session) == domain.Abandonment(
        dt.date(2024, 1, 15), District.AMAGER_VEST, "change_of_address"
    )


def test_a_referred_session_is_no_contact() -> None:
    session = sample_payload(EventType.KVIK_SESSION_REFERRED)
    assert isinstance(session, SessionReferred)
    assert domain.tallies_of_session_referred(session) == []


def test_a_mobile_contact_counts_on_the_mobile_channel_in_its_recorded_mode() -> None:
    [count] = domain.tallies_of_contact_recorded(_contact(mode=ContactMode.SELF_SERVICE))
    assert (count.channel, count.mode, count.district) == (
        Channel.MOBILE,
        ContactMode.SELF_SERVICE,
        District.VALBY,
    )


def test_a_report_stands_for_its_self_service_and_assisted_counts() -> None:
    counts = domain.tallies_of_report(_report(self_service=412, assisted=23))
    assert [(c.channel, c.mode, c.count) for c in counts] == [
        (Channel.DIGITAL, ContactMode.SELF_SERVICE, 412),
        (Channel.DIGITAL, ContactMode.ASSISTED, 23),
    ]


def test_a_summer_event_at_23_30_utc_counts_on_the_next_copenhagen_day() -> None:
    ended = dt.datetime(2024, 7, 10, 23, 30, tzinfo=UTC)
    session = _completed(started_at=ended - dt.timedelta(minutes=5), ended_at=ended)
    assert domain.tallies_of_session_completed(session)[0].day == dt.date(2024, 7, 11)


def test_a_winter_event_at_22_30_utc_stays_on_its_day_and_at_23_30_moves_on() -> None:
    assert domain.local_day(dt.datetime(2024, 1, 15, 22, 30, tzinfo=UTC)) == dt.date(2024, 1, 15)
    assert domain.local_day(dt.datetime(2024, 1, 15, 23, 30, tzinfo=UTC)) == dt.date(2024, 1, 16)


def test_days_on_the_dst_switches_follow_the_copenhagen_clock() -> None:
    # Summer time starts 31 March 2024 01:00 UTC and ends 27 October 2024 01:00 UTC.
    assert domain.local_day(dt.datetime(2024, 3, 30, 22, 59, tzinfo=UTC)) == dt.date(2024, 3, 30)
    assert domain.local_day(dt.datetime(2024, 3, 31, 22, 0, tzinfo=UTC)) == dt.date(2024, 4, 1)
    assert domain.local_day(dt.datetime(2024, 10, 26, 22, 0, tzinfo=UTC)) == dt.date(2024, 10, 27)
    assert domain.local_day(dt.datetime(2024, 10, 27, 22, 59, tzinfo=UTC)) == dt.date(2024, 10, 27)
    assert domain.local_day(dt.datetime(2024, 10, 27, 23, 0, tzinfo=UTC)) == dt.date(2024, 10, 28)


def test_a_report_replacing_another_moves_only_the_difference() -> None:
    report = _report(self_service=10, assisted=4)
    assert domain.report_change(None, report) == (10, 4)
    assert domain.report_change((10, 4), report) == (0, 0)
    assert domain.report_change((12, 1), report) == (-2, 3)


def test_a_week_is_the_iso_week_monday_to_sunday() -> None:
    assert domain.period_days(Period.WEEK, dt.date(2024, 1, 17)) == (
        dt.date(2024, 1, 15),
        dt.date(2024, 1, 21),
    )


def test_a_month_is_the_calendar_month() -> None:
    assert domain.period_days(Period.MONTH, dt.date(2024, 2, 10)) == (
        dt.date(2024, 2, 1),
        dt.date(2024, 2, 29),
    )


def test_the_share_is_self_service_over_all_contacts_for_the_selection() -> None:
    cells = [
        {
            CellKey(District.VALBY, Channel.KVIK, ContactMode.SELF_SERVICE, "passport"): 3,
            CellKey(District.VALBY, Channel.MOBILE, ContactMode.ASSISTED, "passport"): 1,
            CellKey(District.VALBY, Channel.DIGITAL, ContactMode.SELF_SERVICE, "tax"): 10,
            CellKey(District.OSTERBRO, Channel.PHONE, ContactMode.ASSISTED, "passport"): 5,
        }
    ]
    share = domain.share_of(cells, District.VALBY, "passport")
    assert (share.self_service, share.assisted, share.total, share.share) == (3, 1, 4, 0.75)
    assert share.channels[Channel.KVIK][ContactMode.SELF_SERVICE] == 3
    assert share.channels[Channel.MOBILE][ContactMode.ASSISTED] == 1


def test_the_share_of_no_contacts_is_none() -> None:
    assert domain.share_of([{}]).share is None


def test_shares_by_district_lists_every_district() -> None:
    shares = domain.shares_by_district([{}])
    assert list(shares) == list(District)


def test_an_intake_for_a_future_day_is_refused() -> None:
    line = IntakeLine(District.VALBY, "passport", 1, 1)
    problems = domain.intake_problems(
        dt.date(2024, 1, 16), [line], today=dt.date(2024, 1, 15), catalogue={"passport"}
    )
    assert problems == [("body.day", "The day is in the future")]


def test_a_duplicate_intake_line_is_named_by_its_index() -> None:
    lines = [
        IntakeLine(District.VALBY, "passport", 1, 1),
        IntakeLine(District.VALBY, "tax", 1, 1),
        IntakeLine(District.VALBY, "passport", 2, 2),
    ]
    problems = domain.intake_problems(
        dt.date(2024, 1, 15), lines, today=dt.date(2024, 1, 15), catalogue={"passport", "tax"}
    )
    assert [field for field, _ in problems] == ["body.items[2]"]


def test_an_intake_line_for_a_service_outside_the_catalogue_is_named() -> None:
    lines = [IntakeLine(District.VALBY, "passport", 1, 1), IntakeLine(District.VALBY, "tax", 1, 1)]
    problems = domain.intake_problems(
        dt.date(2024, 1, 15), lines, today=dt.date(2024, 1, 15), catalogue={"passport"}
    )
    assert problems == [
        ("body.items[1].service", "Unknown service 'tax': not in the registry's catalogue")
    ]


def test_the_kvik_funnel_rates_come_from_completed_and_abandoned_sessions() -> None:
    cells = [
        {
            CellKey(District.VALBY, Channel.KVIK, ContactMode.SELF_SERVICE, "passport"): 3,
            CellKey(District.VALBY, Channel.KVIK, ContactMode.ASSISTED, "passport"): 1,
            CellKey(District.VALBY, Channel.MOBILE, ContactMode.ASSISTED, "passport"): 7,
        }
    ]
    abandoned = [{(District.VALBY, "passport"): 1, (District.OSTERBRO, "passport"): 9}]
    funnel = domain.kvik_funnel(cells, abandoned, District.VALBY)
    assert (funnel.completed, funnel.abandoned) == (4, 1)
    assert (funnel.completion_rate, funnel.abandonment_rate, funnel.help_rate) == (0.8, 0.2, 0.25)


def test_a_kvik_funnel_without_sessions_has_no_rates() -> None:
    funnel = domain.kvik_funnel([{}], [{}])
    assert (funnel.completion_rate, funnel.abandonment_rate, funnel.help_rate) == (None,) * 3
