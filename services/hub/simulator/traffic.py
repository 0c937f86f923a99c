"""The traffic model of ``kanalhub simulate``: how many citizens reach the municipality, on
which channel and for what, day by day, for each of Copenhagen's 10 districts. Pure functions,
deterministic for a seed; :mod:`~services.hub.simulator.driver` sends the result to the running
hub. :func:`kiosk_session` is the one generator of KVIK sessions: the day plans, the live
kiosks (:mod:`~services.hub.simulator.live`) and the benchmarks all take theirs from it.

Where the proportions come from (docs/simulation.md says the same):

- districts' populations: Copenhagen's districts as published by the municipality's statistics
  (rounded to thousands, about 2024) - real figures, rounded;
- ~80 % of enquiries are "general needs" and ~20 % "special needs" (the seeds): the service
  mix below gives general-needs services 80 % of the weight, with the registry catalogue's own
  grouping of services;
- the citizen-service centres (desks) and the mobile stops are the registry's, with their
  opening hours;
- **assumptions**: 2 contacts per inhabitant a year across all channels; KVIK kiosks take 4 % of
  contacts; 15 % of KVIK sessions need staff help, 8 % are abandoned, 3 % referred; the digital
  share of general-needs matters starts between 60 % and 76 % by district and rises 0.05-0.25
  points a week, with dips in July and at Christmas; special-needs matters are far less often
  done digitally (a quarter as often), and go to the phone and the desks instead (personal
  contact first); weekday and hour-of-day profiles with a Monday peak and a quiet weekend; the
  digital platform reports 3 % of its contacts as assisted (chat help); a district with a
  citizen-service centre has 8 % of its contacts at its desks, 6 % of desk tickets are no-shows,
  waits and service times are log-normal (median 9 and 7 minutes), longer in the first two
  hours after opening; a mobile stop's visit (two staff, its opening window) sees 8-16
  contacts, 35 % of them self-service with guidance, 30 % ending with the citizen onboarded to
  digital self-service.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.contracts import ContactMode, District, HelpChannel, SessionOutcome, TicketOutcome
from services.contracts.geography import COPENHAGEN
from services.contracts.opening_hours import public_holiday

POPULATION: dict[District, int] = {
    District.INDRE_BY: 57_000,
    District.OSTERBRO: 80_000,
    District.NORREBRO: 80_000,
    District.VESTERBRO_KONGENS_ENGHAVE: 70_000,
    District.VALBY: 63_000,
    District.VANLOSE: 41_000,
    District.BRONSHOJ_HUSUM: 45_000,
    District.BISPEBJERG: 55_000,
    District.AMAGER_OST: 63_000,
    District.AMAGER_VEST: 85_000,
}
"""Inhabitants per district, rounded (about 2024)."""

CONTACTS_PER_INHABITANT_YEAR = 2.0
"""Assumption: citizen-service contacts per inhabitant and year, all channels."""

KVIK_FRACTION = 0.04
"""Assumption: the part of all contacts that happen at KVIK kiosks."""

GENERAL_NEEDS: dict[str, float] = {
    "change_of_address": 0.18,
    "passport": 0.12,
    "driving_licence": 0.08,
    "health_insurance_card": 0.10,
    "digital_id": 0.10,
    "childcare_place": 0.06,
    "tax": 0.08,
    "cash_benefit": 0.04,
    "building_permit": 0.04,
    "pension": 0.06,
    "housing_benefit": 0.06,
}
SPECIAL_NEEDS: dict[str, float] = {
    "social_counselling": 0.08,
    "rehabilitation": 0.05,
    "alcohol_treatment": 0.03,
    "home_care": 0.06,
}
SERVICE_MIX: dict[str, float] = {
    **{code: weight * 0.80 / sum(GENERAL_NEEDS.values()) for code, weight in GENERAL_NEEDS.items()},
    **{code: weight * 0.20 / sum(SPECIAL_NEEDS.values()) for code, weight in SPECIAL_NEEDS.items()},
}
"""General needs 80 %, special needs 20 % (the seeds); within each, an assumed mix. The groups
are the registry catalogue's (``general_needs`` of each seeded service)."""

SPECIAL_DIGITAL_FACTOR = 0.25
"""Assumption: special-needs matters are done digitally a quarter as often as general ones."""

COUNTER_FRACTION = 0.08
"""Assumption: the part of a district's contacts served at the desks of its citizen-service
centre (districts without one: none; their citizens use the other channels)."""

NO_SHOW_RATE = 0.06
"""Assumption: desk tickets whose citizen did not turn up when called."""

WAIT_MEDIAN_MINUTES = 9.0
SERVICE_MEDIAN_MINUTES = 7.0
"""Assumptions: median wait (ticket to call) and service time (call to end) at a desk."""

MOBILE_CONTACTS_PER_VISIT = (8, 16)
MOBILE_SELF_SERVICE = 0.35
MOBILE_ONBOARDED = 0.30
"""Assumptions for a mobile stop's visit: contacts, self-service with guidance, onboarded."""

KIOSK_SERVICES = ("change_of_address", "passport", "health_insurance_card", "digital_id", "tax")
"""What citizens do at a kiosk (self-service matters of general needs)."""

WEEKDAY_FACTOR = (1.35, 1.15, 1.1, 1.15, 0.95, 0.2, 0.1)
"""Monday ... Sunday, relative to an average day (sums to 6.0 over a week)."""

KIOSK_HOURS = (10, 17)
"""KVIK sessions happen in the libraries' staffed hours (local time)."""

BASE_SHARE: dict[District, float] = {
    District.INDRE_BY: 0.76,
    District.OSTERBRO: 0.75,
    District.NORREBRO: 0.66,
    District.VESTERBRO_KONGENS_ENGHAVE: 0.70,
    District.VALBY: 0.69,
    District.VANLOSE: 0.68,
    District.BRONSHOJ_HUSUM: 0.60,
    District.BISPEBJERG: 0.62,
    District.AMAGER_OST: 0.71,
    District.AMAGER_VEST: 0.67,
}
"""Assumption: digital share at the start of the simulated period."""

WEEKLY_RISE: dict[District, float] = {
    district: 0.0005 + 0.002 * (index % 5) / 4 for index, district in enumerate(District)
}
"""Assumption: how much the share rises a week (0.05 to 0.25 points)."""


def target_share(district: District, day: dt.date, start: dt.date) -> float:
    """The digital share the model aims at for ``district`` on ``day``."""
    weeks = (day - start).days / 7
    share = BASE_SHARE[district] + WEEKLY_RISE[district] * weeks
    if day.month == 7 or (day.month == 12 and day.day >= 20):
        share -= 0.03  # holidays: fewer routine matters, more urgent ones at the desk
    return min(0.95, max(0.3, share))


def contacts_on(district: District, day: dt.date) -> float:
    """The expected number of contacts of ``district`` on ``day``, all channels."""
    per_day = POPULATION[district] * CONTACTS_PER_INHABITANT_YEAR / 365
    return per_day * WEEKDAY_FACTOR[day.weekday()] * 7 / sum(WEEKDAY_FACTOR)


@dataclass(frozen=True)
class KioskSession:
    """One simulated KVIK session (a body for the kvik service, without the kiosk id)."""

    session_id: str
    service: str
    started_at: dt.datetime
    ended_at: dt.datetime
    steps: tuple[str, ...]
    outcome: SessionOutcome
    help: HelpChannel
    referred_to: str | None


@dataclass(frozen=True)
class IntakeLine:
    """One line of a day's intake from an external channel system."""

    district: District
    service: str
    self_service: int
    assisted: int


@dataclass(frozen=True)
class OpenPlace:
    """A registry entry the simulation sends traffic to: a citizen-service centre or a mobile
    stop, with what it offers and its weekly hours (weekday -> (opens, closes), local)."""

    entry_id: str
    district: District
    site_id: str | None
    services: tuple[str, ...]
    hours: dict[int, tuple[dt.time, dt.time]]


@dataclass(frozen=True)
class DeskTicket:
    """One finished queue ticket at a citizen-service centre (a body for the live feed)."""

    ticket_id: str
    service: str
    desk_id: str | None
    staff_id: str | None
    issued_at: dt.datetime
    called_at: dt.datetime | None
    served_at: dt.datetime | None
    ended_at: dt.datetime
    outcome: TicketOutcome


@dataclass(frozen=True)
class MobileContact:
    """One contact recorded at a mobile visit."""

    contact_id: str
    service: str
    mode: ContactMode
    onboarded_to_digital: bool
    at: dt.datetime


@dataclass(frozen=True)
class MobileVisit:
    """A visit of the mobile citizen service at a mobile stop, with its contacts."""

    visit_id: str
    entry_id: str
    site_id: str
    district: District
    starts_at: dt.datetime
    ends_at: dt.datetime
    staff: tuple[str, ...]
    services: tuple[str, ...]
    contacts: tuple[MobileContact, ...]


@dataclass(frozen=True)
class DayPlan:
    """What happens on one day: sessions per KVIK entry, the two intake files, desk tickets
    per citizen-service centre and mobile visits."""

    day: dt.date
    sessions: dict[str, list[KioskSession]]
    digital: list[IntakeLine]
    phone: list[IntakeLine]
    desk: dict[str, list[DeskTicket]] = field(default_factory=dict)
    mobile: list[MobileVisit] = field(default_factory=list)

    @property
    def contacts(self) -> int:
        """Contacts the day is meant to count (abandoned and referred sessions and no-shows
        are none)."""
        kiosk = sum(
            1
            for sessions in self.sessions.values()
            for s in sessions
            if s.outcome is SessionOutcome.COMPLETED
        )
        lines = self.digital + self.phone
        served = sum(
            1
            for tickets in self.desk.values()
            for t in tickets
            if t.outcome is TicketOutcome.SERVED
        )
        mobile = sum(len(visit.contacts) for visit in self.mobile)
        return kiosk + sum(line.self_service + line.assisted for line in lines) + served + mobile


def _split(total: float, weights: dict[str, float], rng: random.Random) -> dict[str, int]:
    """``total`` spread over ``weights`` with a little noise, rounded."""
    return {
        code: max(0, round(total * weight * rng.uniform(0.85, 1.15)))
        for code, weight in weights.items()
    }


def _sessions(
    district_kiosk_contacts: float,
    entries: list[str],
    day: dt.date,
    rng: random.Random,
) -> dict[str, list[KioskSession]]:
    sessions: dict[str, list[KioskSession]] = {entry: [] for entry in entries}
    if not entries:
        return sessions
    count = round(district_kiosk_contacts * rng.uniform(0.8, 1.2))
    opens, closes = KIOSK_HOURS
    for _ in range(count):
        entry = rng.choice(entries)
        minute = rng.triangular(opens * 60, closes * 60, (opens + 3) * 60)
        started = dt.datetime.combine(day, dt.time(), COPENHAGEN) + dt.timedelta(minutes=minute)
        sessions[entry].append(kiosk_session(rng, started))
    return sessions


def kiosk_session(
    rng: random.Random, started: dt.datetime, services: Sequence[str] = KIOSK_SERVICES
) -> KioskSession:
    """A KVIK session that started at ``started`` (aware): 2-15 minutes long, 8 % abandoned,
    3 % referred to the counter, 15 % with staff help by video or phone, one of ``services``.
    Deterministic for the state of ``rng``."""
    length = dt.timedelta(minutes=rng.uniform(2, 15))
    draw = rng.random()
    outcome = (
        SessionOutcome.ABANDONED
        if draw < 0.08
        else SessionOutcome.REFERRED
        if draw < 0.11
        else SessionOutcome.COMPLETED
    )
    helped = rng.random() < 0.15
    return KioskSession(
        session_id=str(_uuid(rng)),
        service=rng.choice(services),
        started_at=started.astimezone(dt.UTC),
        ended_at=(started + length).astimezone(dt.UTC),
        steps=("choose_service", "log_in", "confirm"),
        outcome=outcome,
        help=rng.choice((HelpChannel.VIDEO, HelpChannel.PHONE)) if helped else HelpChannel.NONE,
        referred_to="counter" if outcome is SessionOutcome.REFERRED else None,
    )


def ending_at(session: KioskSession, end: dt.datetime) -> KioskSession:
    """``session`` moved so that it ends at ``end``, its length unchanged (a live kiosk posts a
    session when it ends; the hub refuses sessions from the future)."""
    length = session.ended_at - session.started_at
    return dataclasses.replace(session, started_at=end - length, ended_at=end)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _at(day: dt.date, minute: float) -> dt.datetime:
    """``minute`` minutes after local midnight of ``day``, in UTC."""
    local = dt.datetime.combine(day, dt.time(), COPENHAGEN) + dt.timedelta(minutes=minute)
    return local.astimezone(dt.UTC)


def _minutes(clock: dt.time) -> int:
    return clock.hour * 60 + clock.minute


def staff_id(place: str, number: int) -> str:
    """A stable pseudonymous staff id for the simulation (``staff-`` and 12 hex digits)."""
    return "staff-" + hashlib.sha256(f"{place}-{number}".encode()).hexdigest()[:12]


def _weights(services: tuple[str, ...]) -> dict[str, float]:
    """The service mix restricted to what a place offers (equal weights for the unknown)."""
    weights = {code: SERVICE_MIX.get(code, 0.01) for code in services}
    return weights or {"change_of_address": 1.0}


def _tickets(
    centre: OpenPlace, expected_served: float, day: dt.date, rng: random.Random
) -> list[DeskTicket]:
    """A day's tickets at ``centre``: issued over its opening hours, log-normal waits (longer in
    the first two hours) and service times, some no-shows."""
    hours = centre.hours.get(day.weekday())
    if hours is None or expected_served <= 0:
        return []
    opens, closes = _minutes(hours[0]), _minutes(hours[1])
    weights = _weights(centre.services)
    codes, mix = list(weights), list(weights.values())
    count = round(expected_served / (1 - NO_SHOW_RATE) * rng.uniform(0.85, 1.15))
    tickets = []
    for number in range(1, count + 1):
        issued_minute = rng.uniform(opens, max(opens + 1, closes - 20))
        peak = 1.5 if issued_minute < opens + 120 else 1.0
        wait = WAIT_MEDIAN_MINUTES * peak * math.exp(rng.gauss(0, 0.6))
        issued = _at(day, issued_minute)
        called = issued + dt.timedelta(minutes=min(wait, 180))
        ticket_id = f"{centre.entry_id}-{day:%Y%m%d}-{number:04d}"
        desk = f"desk-{rng.randint(1, 6):02d}"
        if rng.random() < NO_SHOW_RATE:
            tickets.append(
                DeskTicket(
                    ticket_id, rng.choices(codes, mix)[0], desk, None, issued, called, None,
                    called + dt.timedelta(minutes=3), TicketOutcome.NO_SHOW,
                )
            )  # fmt: skip
            continue
        served = called + dt.timedelta(minutes=1)
        service_time = SERVICE_MEDIAN_MINUTES * math.exp(rng.gauss(0, 0.5))
        tickets.append(
            DeskTicket(
                ticket_id, rng.choices(codes, mix)[0], desk,
                staff_id(centre.entry_id, int(desk[-2:])), issued, called, served,
                served + dt.timedelta(minutes=min(service_time, 120)), TicketOutcome.SERVED,
            )
        )  # fmt: skip
    return tickets


def _visit(stop: OpenPlace, day: dt.date, rng: random.Random) -> MobileVisit | None:
    """The visit of the mobile citizen service at ``stop`` on ``day``, if it is a stop day."""
    hours = stop.hours.get(day.weekday())
    if hours is None or stop.site_id is None:
        return None
    opens, closes = _minutes(hours[0]), _minutes(hours[1])
    weights = _weights(stop.services)
    codes, mix = list(weights), list(weights.values())
    visit_id = f"sim-{stop.entry_id}-{day:%Y%m%d}"
    contacts = tuple(
        MobileContact(
            contact_id=f"{visit_id}-{n:02d}",
            service=rng.choices(codes, mix)[0],
            mode=ContactMode.SELF_SERVICE
            if rng.random() < MOBILE_SELF_SERVICE
            else ContactMode.ASSISTED,
            onboarded_to_digital=rng.random() < MOBILE_ONBOARDED,
            at=_at(day, rng.uniform(opens + 5, closes - 5)),
        )
        for n in range(1, rng.randint(*MOBILE_CONTACTS_PER_VISIT) + 1)
    )
    return MobileVisit(
        visit_id=visit_id,
        entry_id=stop.entry_id,
        site_id=stop.site_id,
        district=stop.district,
        starts_at=_at(day, opens),
        ends_at=_at(day, closes),
        staff=(staff_id(stop.entry_id, 1), staff_id(stop.entry_id, 2)),
        services=stop.services,
        contacts=tuple(sorted(contacts, key=lambda c: c.at)),
    )


def plan_day(
    day: dt.date,
    start: dt.date,
    kiosk_entries: dict[District, list[str]],
    seed: int = 2026,
    centres: tuple[OpenPlace, ...] = (),
    stops: tuple[OpenPlace, ...] = (),
) -> DayPlan:
    """The traffic of one day; the same day and seed always give the same plan.

    ``centres`` are the open citizen-service centres (their desks get a share of their
    district's contacts on the days they are open), ``stops`` the open mobile stops (one visit
    on each of their weekly stop days)."""
    rng = random.Random(f"{seed}-{day.isoformat()}")
    sessions: dict[str, list[KioskSession]] = {}
    digital: list[IntakeLine] = []
    phone: list[IntakeLine] = []
    desk: dict[str, list[DeskTicket]] = {}
    mobile: list[MobileVisit] = []
    if public_holiday(day):  # staffed places are closed on public holidays
        centres, stops = (), ()
    for stop in stops:
        if (visit := _visit(stop, day, rng)) is not None:
            mobile.append(visit)
    for district in District:
        total = contacts_on(district, day)
        entries = kiosk_entries.get(district, [])
        kiosk = total * KVIK_FRACTION if entries else 0.0
        sessions.update(_sessions(kiosk, entries, day, rng))
        here = [c for c in centres if c.district is district and day.weekday() in c.hours]
        counter = total * COUNTER_FRACTION if here else 0.0
        for centre in here:
            desk[centre.entry_id] = _tickets(centre, counter / len(here), day, rng)
        visits = [v for v in mobile if v.district is district]
        on_visits = sum(len(v.contacts) for v in visits)
        visit_self = sum(
            1 for v in visits for c in v.contacts if c.mode is ContactMode.SELF_SERVICE
        )
        # Self-service beyond the kiosks' (85 % of them without help) and the mobile visits'
        # comes from the platform; special-needs matters are rarely done digitally.
        self_service = max(
            0.0, target_share(district, day, start) * total - 0.85 * kiosk - visit_self
        )
        digital_total = self_service / 0.97
        phone_total = max(0.0, total - kiosk - counter - on_visits - digital_total)
        digital_mix = {
            code: weight * (SPECIAL_DIGITAL_FACTOR if code in SPECIAL_NEEDS else 1.0)
            for code, weight in SERVICE_MIX.items()
        }
        digital_by_service = _split(
            digital_total, {c: w / sum(digital_mix.values()) for c, w in digital_mix.items()}, rng
        )
        phone_mix = {
            code: weight / (SPECIAL_DIGITAL_FACTOR if code in SPECIAL_NEEDS else 1.0)
            for code, weight in SERVICE_MIX.items()
        }
        phone_by_service = _split(
            phone_total, {c: w / sum(phone_mix.values()) for c, w in phone_mix.items()}, rng
        )
        for code in SERVICE_MIX:
            on_platform = digital_by_service[code]
            assisted = round(on_platform * 0.03)
            if on_platform:
                digital.append(IntakeLine(district, code, on_platform - assisted, assisted))
            if phone_by_service[code]:
                phone.append(IntakeLine(district, code, 0, phone_by_service[code]))
    return DayPlan(day, sessions, digital, phone, desk, mobile)
