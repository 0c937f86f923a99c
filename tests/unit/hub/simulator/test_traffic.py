"""The traffic model of ``kanalhub simulate`` (services/hub/simulator/traffic.py)."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest

from services.contracts import DeskTicket as DeskTicketContract
from services.contracts import District, HelpChannel, SessionOutcome, TicketOutcome
from services.contracts.geography import COPENHAGEN
from services.contracts.opening_hours import public_holiday
from services.hub.simulator.traffic import (
    GENERAL_NEEDS,
    SERVICE_MIX,
    SPECIAL_NEEDS,
    DayPlan,
    OpenPlace,
    contacts_on,
    ending_at,
    kiosk_session,
    plan_day,
    target_share,
)

START = dt.date(2026, 1, 5)
KIOSKS = {District.VALBY: ["kvik-valby"], District.NORREBRO: ["kvik-a", "kvik-b"]}


def _self_service_share(plan: DayPlan) -> float:
    kiosk_self = sum(
        1
        for sessions in plan.sessions.values()
        for s in sessions
        if s.outcome is SessionOutcome.COMPLETED and s.help is HelpChannel.NONE
    )
    platform = sum(line.self_service for line in plan.digital)
    return (kiosk_self + platform) / plan.contacts


def test_the_same_day_and_seed_give_the_same_traffic() -> None:
    assert plan_day(dt.date(2026, 3, 2), START, KIOSKS) == plan_day(
        dt.date(2026, 3, 2), START, KIOSKS
    )


def test_general_needs_take_80_percent_of_the_service_mix() -> None:
    assert sum(SERVICE_MIX[code] for code in GENERAL_NEEDS) == pytest.approx(0.80)
    assert sum(SERVICE_MIX.values()) == pytest.approx(1.0)


def test_the_day_comes_close_to_the_models_share_for_all_districts() -> None:
    day = dt.date(2026, 3, 2)
    expected = sum(target_share(d, day, START) * contacts_on(d, day) for d in District) / sum(
        contacts_on(d, day) for d in District
    )
    assert _self_service_share(plan_day(day, START, KIOSKS)) == pytest.approx(expected, abs=0.03)


def test_the_share_rises_over_the_weeks() -> None:
    assert target_share(District.VALBY, START + dt.timedelta(weeks=30), START) > target_share(
        District.VALBY, START, START
    )


def test_a_monday_is_busier_than_a_sunday() -> None:
    monday, sunday = dt.date(2026, 3, 2), dt.date(2026, 3, 8)
    assert contacts_on(District.VALBY, monday) > 5 * contacts_on(District.VALBY, sunday)


def test_kiosk_sessions_happen_only_at_kiosk_entries_within_opening_hours() -> None:
    plan = plan_day(dt.date(2026, 3, 3), START, KIOSKS)
    assert set(plan.sessions) == {"kvik-valby", "kvik-a", "kvik-b"}
    for sessions in plan.sessions.values():
        for session in sessions:
            local = session.started_at.astimezone(dt.timezone(dt.timedelta(hours=1)))
            assert 10 <= local.hour < 17
            assert session.ended_at > session.started_at


CENTRE = OpenPlace(
    entry_id="bs-valby",
    district=District.VALBY,
    site_id="site-valby",
    services=("change_of_address", "passport", "pension"),
    hours={weekday: (dt.time(10), dt.time(15)) for weekday in range(5)},
)
STOP = OpenPlace(
    entry_id="mobil-tingbjerg",
    district=District.BRONSHOJ_HUSUM,
    site_id="site-tingbjerg",
    services=("change_of_address", "passport", "digital_id"),
    hours={1: (dt.time(13), dt.time(17))},
)
TUESDAY = dt.date(2026, 3, 3)


def _plan(day: dt.date = TUESDAY) -> DayPlan:
    return plan_day(day, START, KIOSKS, centres=(CENTRE,), stops=(STOP,))


def test_desk_tickets_are_issued_in_opening_hours_with_times_in_order() -> None:
    tickets = _plan().desk["bs-valby"]
    assert len(tickets) > 10
    for ticket in tickets:
        local = ticket.issued_at.astimezone(COPENHAGEN)
        assert 10 <= local.hour < 15
        moments = [ticket.issued_at, ticket.called_at, ticket.served_at, ticket.ended_at]
        present = [m for m in moments if m is not None]
        assert present == sorted(present)
        assert ticket.service in CENTRE.services


def test_a_few_desk_tickets_are_no_shows_and_no_contacts() -> None:
    week = [_plan(TUESDAY + dt.timedelta(days=n)) for n in range(-1, 4)]
    tickets = [t for plan in week for t in plan.desk["bs-valby"]]
    no_shows = [t for t in tickets if t.outcome is TicketOutcome.NO_SHOW]
    assert 0 < len(no_shows) < len(tickets) / 5
    assert all(t.served_at is None for t in no_shows)


def test_desk_contacts_come_out_of_the_phone_and_the_day_total_stays_about_the_same() -> None:
    with_desks = _plan()
    without_desks = plan_day(TUESDAY, START, KIOSKS, stops=(STOP,))
    assert with_desks.desk["bs-valby"]
    assert with_desks.contacts == pytest.approx(without_desks.contacts, rel=0.05)


def test_a_centre_has_no_tickets_on_a_day_it_is_closed() -> None:
    saturday = dt.date(2026, 3, 7)
    assert "bs-valby" not in _plan(saturday).desk


def test_staffed_places_are_closed_on_a_public_holiday() -> None:
    easter_monday = dt.date(2026, 4, 6)
    assert public_holiday(easter_monday)
    plan = _plan(easter_monday)
    assert plan.desk == {}
    assert plan.mobile == []


def test_a_mobile_stop_gets_one_visit_on_its_stop_day_with_contacts_inside_the_window() -> None:
    (visit,) = _plan().mobile
    assert visit.site_id == "site-tingbjerg"
    assert len(visit.contacts) >= 8
    assert all(visit.starts_at < c.at < visit.ends_at for c in visit.contacts)
    assert all(c.service in STOP.services for c in visit.contacts)
    assert _plan(dt.date(2026, 3, 4)).mobile == []


def test_special_needs_are_done_digitally_less_often_than_general_needs() -> None:
    plan = _plan()

    def digital_part(codes: dict[str, float]) -> float:
        digital = sum(line.self_service for line in plan.digital if line.service in codes)
        phone = sum(line.assisted for line in plan.phone if line.service in codes)
        return digital / (digital + phone)

    assert digital_part(SPECIAL_NEEDS) < digital_part(GENERAL_NEEDS) / 2


def test_the_simulations_needs_groups_are_the_registry_catalogues() -> None:
    seed = json.loads(
        (Path(__file__).parents[4] / "services/registry/data/copenhagen.json").read_text()
    )
    general = {s["code"] for s in seed["services"] if s["general_needs"]}
    assert set(GENERAL_NEEDS) <= general
    assert not set(SPECIAL_NEEDS) & general


def test_every_simulated_ticket_is_one_the_contract_takes() -> None:
    for offset in range(365):
        day = START + dt.timedelta(days=offset)
        for ticket in _plan(day).desk.get("bs-valby", []):
            DeskTicketContract(
                ticket_id=ticket.ticket_id,
                service=ticket.service,
                desk_id=ticket.desk_id,
                staff_id=ticket.staff_id,
                issued_at=ticket.issued_at,
                called_at=ticket.called_at,
                served_at=ticket.served_at,
                ended_at=ticket.ended_at,
                outcome=ticket.outcome,
            )
            assert ticket.ended_at.astimezone(COPENHAGEN).date() == day


def test_a_generated_kiosk_session_is_one_of_the_given_services_and_lasts_2_to_15_minutes() -> None:
    rng = random.Random(3)
    started = dt.datetime(2026, 3, 2, 10, tzinfo=COPENHAGEN)
    sessions = [kiosk_session(rng, started, ("passport", "tax")) for _ in range(500)]
    assert {s.service for s in sessions} == {"passport", "tax"}
    assert all(s.started_at == started for s in sessions)
    lengths = [(s.ended_at - s.started_at).total_seconds() for s in sessions]
    assert min(lengths) >= 120
    assert max(lengths) <= 900
    completed = sum(1 for s in sessions if s.outcome is SessionOutcome.COMPLETED)
    assert 0.83 < completed / len(sessions) < 0.95  # 89 % in the model
    referred = [s for s in sessions if s.outcome is SessionOutcome.REFERRED]
    assert referred
    assert all(s.referred_to == "counter" for s in referred)


def test_a_session_moved_to_end_now_keeps_its_length_and_id() -> None:
    session = kiosk_session(random.Random(5), dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))
    end = dt.datetime(2026, 3, 9, 14, 30, tzinfo=dt.UTC)
    moved = ending_at(session, end)
    assert moved.ended_at == end
    assert moved.ended_at - moved.started_at == session.ended_at - session.started_at
    assert moved.session_id == session.session_id
