"""The traffic model of ``kanalhub simulate``: how many citizens reach the municipality, on
which channel and for what, day by day, for each of Copenhagen's 10 districts. Pure functions,
deterministic for a seed; ``simulate`` sends the result to the running hub.

Where the proportions come from (docs/simulation.md says the same):

- districts' populations: Copenhagen's districts as published by the municipality's statistics
  (rounded to thousands, about 2024) - real figures, rounded;
- ~80 % of enquiries are "general needs" and ~20 % "special needs" (DOMAIN.md, the seeds): the
  service mix below gives general-needs services 80 % of the weight;
- **assumptions**: 2 contacts per inhabitant a year across all channels; KVIK kiosks take 4 % of
  contacts; 15 % of KVIK sessions need staff help, 8 % are abandoned, 3 % referred; the digital
  share starts between 60 % and 76 % by district and rises 0.05-0.25 points a week, with dips in
  July and at Christmas; weekday and hour-of-day profiles with a Monday peak and a quiet
  weekend; the digital platform reports 3 % of its contacts as assisted (chat help).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from services.contracts import District, HelpChannel, SessionOutcome

COPENHAGEN = ZoneInfo("Europe/Copenhagen")

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
}
SPECIAL_NEEDS: dict[str, float] = {
    "pension": 0.06,
    "housing_benefit": 0.06,
    "social_counselling": 0.04,
    "home_care": 0.04,
}
SERVICE_MIX: dict[str, float] = {
    **{code: weight * 0.80 / sum(GENERAL_NEEDS.values()) for code, weight in GENERAL_NEEDS.items()},
    **{code: weight * 0.20 / sum(SPECIAL_NEEDS.values()) for code, weight in SPECIAL_NEEDS.items()},
}
"""General needs 80 %, special needs 20 % (the seeds); within each, an assumed mix."""

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
class DayPlan:
    """What happens on one day: sessions per KVIK entry, and the two intake files."""

    day: dt.date
    sessions: dict[str, list[KioskSession]]
    digital: list[IntakeLine]
    phone: list[IntakeLine]

    @property
    def contacts(self) -> int:
        """Contacts the day is meant to count (abandoned and referred sessions are none)."""
        kiosk = sum(
            1
            for sessions in self.sessions.values()
            for s in sessions
            if s.outcome is SessionOutcome.COMPLETED
        )
        lines = self.digital + self.phone
        return kiosk + sum(line.self_service + line.assisted for line in lines)


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
        sessions[entry].append(
            KioskSession(
                session_id=str(_uuid(rng)),
                service=rng.choice(KIOSK_SERVICES),
                started_at=started.astimezone(dt.UTC),
                ended_at=(started + length).astimezone(dt.UTC),
                steps=("choose_service", "log_in", "confirm"),
                outcome=outcome,
                help=rng.choice((HelpChannel.VIDEO, HelpChannel.PHONE))
                if helped
                else HelpChannel.NONE,
                referred_to="counter" if outcome is SessionOutcome.REFERRED else None,
            )
        )
    return sessions


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def plan_day(
    day: dt.date,
    start: dt.date,
    kiosk_entries: dict[District, list[str]],
    seed: int = 2026,
) -> DayPlan:
    """The traffic of one day; the same day and seed always give the same plan."""
    rng = random.Random(f"{seed}-{day.isoformat()}")
    sessions: dict[str, list[KioskSession]] = {}
    digital: list[IntakeLine] = []
    phone: list[IntakeLine] = []
    for district in District:
        total = contacts_on(district, day)
        entries = kiosk_entries.get(district, [])
        kiosk = total * KVIK_FRACTION if entries else 0.0
        sessions.update(_sessions(kiosk, entries, day, rng))
        # Self-service beyond the kiosks' (85 % of them without help) comes from the platform.
        self_service = max(0.0, target_share(district, day, start) * total - 0.85 * kiosk)
        digital_total = self_service / 0.97
        phone_total = max(0.0, total - kiosk - digital_total)
        digital_by_service = _split(digital_total, SERVICE_MIX, rng)
        phone_by_service = _split(phone_total, SERVICE_MIX, rng)
        for code in SERVICE_MIX:
            on_platform = digital_by_service[code]
            assisted = round(on_platform * 0.03)
            if on_platform:
                digital.append(IntakeLine(district, code, on_platform - assisted, assisted))
            if phone_by_service[code]:
                phone.append(IntakeLine(district, code, 0, phone_by_service[code]))
    return DayPlan(day, sessions, digital, phone)
