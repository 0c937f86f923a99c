"""Desk tickets from the citizen-service centres' queue systems: the rules, no I/O.

- **What a ticket counts as.** A served ticket is one ``counter`` / ``assisted`` contact at its
  entry and site, in the entry's district, on the Copenhagen day of ``ended_at``; a no-show is
  no contact and is counted as a no-show (:func:`contacts_of`).
- **Desk figures** per day x entry x service (:func:`figures_of`): served, no-shows, and two
  histograms with fixed buckets - **waiting time** (issued -> called, every called ticket:
  served and no-show alike, since the wait is what the queue imposed) and **service time**
  (called -> ended, served tickets). Each ticket falls into one bucket (counts are per bucket,
  not cumulative; cumulated when read), with the sum in milliseconds for the mean.
- **Percentiles** are interpolated linearly inside the bucket where the rank falls, as
  Prometheus' ``histogram_quantile`` does (:func:`percentile`); one in the open top bucket is
  reported as the highest bound.
- **What intake refuses** beyond a field's own type (:func:`ticket_problems`): times out of
  order, a served ticket without call or desk, a no-show with ``served_at``, more than 24 h from
  issued to ended, a time in the future (beyond a small clock skew), a desk, staff or ticket id
  that looks like a CPR number, and for a file a ticket that did not end on the file's day.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from services.contracts import Channel, ContactMode, District, TicketOutcome
from services.contracts.guard import find_cpr
from services.contracts.payloads.desk import MAX_TICKET_SPAN, DeskTicket
from services.metrics.domain import ContactCount, local_day

WAIT_BUCKETS: tuple[float, ...] = (60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200)
"""Upper bounds (seconds) of the waiting-time histogram: 1, 2, 5, 10, 15, 20, 30, 45 minutes,
1, 1.5 and 2 hours. A centre's wait is minutes to an hour; finer steps where most waits are."""

SERVICE_BUCKETS: tuple[float, ...] = (60, 120, 180, 300, 420, 600, 900, 1200, 1800, 2700, 3600)
"""Upper bounds (seconds) of the service-time histogram: 1, 2, 3, 5, 7, 10, 15, 20, 30 and 45
minutes and 1 hour. Most desk matters take 3-15 minutes (a passport about 10)."""

INF = "+Inf"
"""The label of the open top bucket."""

SERVED = "served"
NO_SHOW = "no_show"
WAIT = "wait"
SERVICE = "service"


def bucket_label(seconds: float, bounds: Sequence[float]) -> str:
    """The bucket ``seconds`` falls into: the first bound not below it (``60``), or ``+Inf``."""
    for bound in bounds:
        if seconds <= bound:
            return f"{bound:g}"
    return INF


def contacts_of(
    entry_id: str, site_id: str | None, district: District, tickets: Iterable[DeskTicket]
) -> list[ContactCount]:
    """The contacts desk ``tickets`` stand for: one counter/assisted contact per served ticket,
    at the entry, site and district, on the Copenhagen day it ended; none for a no-show."""
    return [
        ContactCount(
            day=local_day(ticket.ended_at),
            district=district,
            channel=Channel.COUNTER,
            mode=ContactMode.ASSISTED,
            service=ticket.service,
            entry_id=entry_id,
            site_id=site_id,
        )
        for ticket in tickets
        if ticket.outcome is TicketOutcome.SERVED
    ]


def figures_of(ticket: DeskTicket) -> list[tuple[str, int]]:
    """What one ticket adds to its day's desk figures: ``(figure, amount)`` pairs.

    Figures: ``served`` or ``no_show``; ``wait|<bucket>``, ``wait_count``, ``wait_ms`` when the
    ticket was called; ``service|<bucket>``, ``service_count``, ``service_ms`` when served.
    """
    added: list[tuple[str, int]] = [
        (SERVED if ticket.outcome is TicketOutcome.SERVED else NO_SHOW, 1)
    ]
    waiting = ticket.waiting_seconds
    if waiting is not None:
        added += [
            (f"{WAIT}|{bucket_label(waiting, WAIT_BUCKETS)}", 1),
            (f"{WAIT}_count", 1),
            (f"{WAIT}_ms", round(waiting * 1000)),
        ]
    serving = ticket.service_seconds
    if serving is not None:
        added += [
            (f"{SERVICE}|{bucket_label(serving, SERVICE_BUCKETS)}", 1),
            (f"{SERVICE}_count", 1),
            (f"{SERVICE}_ms", round(serving * 1000)),
        ]
    return added


# -- reading the figures ---------------------------------------------------------------------


@dataclass
class Histogram:
    """Counts per bucket (not cumulative), keyed by upper bound (``math.inf`` on top), and
    the sum of the observations in milliseconds."""

    bounds: tuple[float, ...]
    buckets: dict[float, int] = field(default_factory=dict)
    count: int = 0
    sum_ms: int = 0

    def add(self, other: Histogram) -> None:
        """Count ``other``'s observations too."""
        for bound, count in other.buckets.items():
            self.buckets[bound] = self.buckets.get(bound, 0) + count
        self.count += other.count
        self.sum_ms += other.sum_ms

    @property
    def mean_seconds(self) -> float | None:
        """The mean observation; None without any."""
        return self.sum_ms / 1000 / self.count if self.count else None

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations at or below it)`` for every bound and ``inf``."""
        running = 0
        result = []
        for bound in (*self.bounds, math.inf):
            running += self.buckets.get(bound, 0)
            result.append((bound, running))
        return result

    def percentile(self, q: float) -> float | None:
        """See :func:`percentile`."""
        return percentile(self, q)


def percentile(histogram: Histogram, q: float) -> float | None:
    """The ``q``-quantile (0 < q < 1) in seconds, interpolated linearly inside the bucket
    where the rank ``q x count`` falls (the first bucket starts at 0), as Prometheus'
    ``histogram_quantile``. A rank in the open top bucket gives the highest finite bound (the
    true value is at least that). None without observations."""
    if not 0 < q < 1:
        raise ValueError("q must be between 0 and 1")
    total = sum(histogram.buckets.values())
    if total == 0:
        return None
    rank = q * total
    lower = 0.0
    below = 0
    for bound, at_or_below in histogram.cumulative():
        if at_or_below >= rank:
            if math.isinf(bound):
                return histogram.bounds[-1]
            in_bucket = at_or_below - below
            return lower + (bound - lower) * (rank - below) / in_bucket
        lower, below = bound, at_or_below
    return histogram.bounds[-1]  # pragma: no cover - the inf bucket holds the whole count


@dataclass
class DeskFigures:
    """Served tickets, no-shows and the two time histograms of a selection of tickets."""

    served: int = 0
    no_shows: int = 0
    waiting: Histogram = field(default_factory=lambda: Histogram(WAIT_BUCKETS))
    service_time: Histogram = field(default_factory=lambda: Histogram(SERVICE_BUCKETS))

    @property
    def tickets(self) -> int:
        """Tickets that ended: served and no-shows."""
        return self.served + self.no_shows

    @property
    def no_show_rate(self) -> float | None:
        """No-shows / tickets; None without tickets."""
        return self.no_shows / self.tickets if self.tickets else None

    def add(self, other: DeskFigures) -> None:
        """Count ``other``'s tickets too."""
        self.served += other.served
        self.no_shows += other.no_shows
        self.waiting.add(other.waiting)
        self.service_time.add(other.service_time)

    def apply(self, figure: str, amount: int) -> None:
        """Add one stored figure (``served``, ``wait|300``, ``service_ms`` ...)."""
        name, _, bucket = figure.partition("|")
        histograms = {WAIT: self.waiting, SERVICE: self.service_time}
        if name == SERVED:
            self.served += amount
        elif name == NO_SHOW:
            self.no_shows += amount
        elif name in histograms and bucket:
            bound = math.inf if bucket == INF else float(bucket)
            buckets = histograms[name].buckets
            buckets[bound] = buckets.get(bound, 0) + amount
        elif name.endswith("_count") and name[: -len("_count")] in histograms:
            histograms[name[: -len("_count")]].count += amount
        elif name.endswith("_ms") and name[: -len("_ms")] in histograms:
            histograms[name[: -len("_ms")]].sum_ms += amount


def figures_by_entry_and_service(
    days: Iterable[Mapping[tuple[str, str, str], int]],
    entry_id: str | None = None,
    service: str | None = None,
) -> dict[str, dict[str, DeskFigures]]:
    """Sum stored day figures (``(entry, service, figure) -> amount``) into entry -> service
    -> figures, keeping only ``entry_id`` and/or ``service`` when given."""
    result: dict[str, dict[str, DeskFigures]] = {}
    for day in days:
        for (entry, code, figure), amount in day.items():
            if (entry_id is not None and entry != entry_id) or (
                service is not None and code != service
            ):
                continue
            result.setdefault(entry, {}).setdefault(code, DeskFigures()).apply(figure, amount)
    return result


def total_of(figures: Iterable[DeskFigures]) -> DeskFigures:
    """The sum of several selections (a centre over all its services)."""
    total = DeskFigures()
    for item in figures:
        total.add(item)
    return total


# -- what intake refuses ---------------------------------------------------------------------


class TicketLike(Protocol):
    """A ticket as a request carries it, before the contract model is built."""

    @property
    def ticket_id(self) -> str | None: ...
    @property
    def desk_id(self) -> str | None: ...
    @property
    def staff_id(self) -> str | None: ...
    @property
    def outcome(self) -> TicketOutcome: ...
    @property
    def issued_at(self) -> dt.datetime: ...
    @property
    def called_at(self) -> dt.datetime | None: ...
    @property
    def served_at(self) -> dt.datetime | None: ...
    @property
    def ended_at(self) -> dt.datetime: ...


_TIMES = ("issued_at", "called_at", "served_at", "ended_at")


def ticket_problems(
    ticket: TicketLike,
    now: dt.datetime,
    clock_skew: dt.timedelta,
    day: dt.date | None = None,
) -> list[tuple[str, str]]:
    """What is wrong with one ticket beyond its fields' types: ``(field, message)`` pairs,
    ``field`` naming the ticket's field (never the value: it may be personal data).

    ``now`` is the server's clock; a time up to ``clock_skew`` after it is taken as the queue
    system's clock running a little ahead. ``day`` is a day file's Copenhagen day, which every
    ticket of the file must have ended on.
    """
    problems: list[tuple[str, str]] = []
    for name in ("ticket_id", "desk_id", "staff_id"):
        if find_cpr(getattr(ticket, name)) is not None:
            problems.append(
                (name, "Looks like a CPR number; a queue system must send pseudonymous ids only")
            )
    if ticket.outcome is TicketOutcome.SERVED:
        problems.extend(
            (name, "A served ticket needs it")
            for name in ("called_at", "served_at", "desk_id")
            if getattr(ticket, name) is None
        )
    elif ticket.served_at is not None:
        problems.append(("served_at", "A no-show has no served_at"))
    latest: tuple[str, dt.datetime] | None = None
    for name in _TIMES:
        moment: dt.datetime | None = getattr(ticket, name)
        if moment is None:
            continue
        if latest is not None and moment < latest[1]:
            problems.append((name, f"Before {latest[0]}: times must be in the order {_ORDER}"))
        else:
            latest = (name, moment)
        if moment > now + clock_skew:
            problems.append((name, "In the future"))
    if ticket.ended_at - ticket.issued_at > MAX_TICKET_SPAN:
        problems.append(("ended_at", "More than 24 hours after issued_at"))
    if day is not None and local_day(ticket.ended_at) != day:
        problems.append(
            (
                "ended_at",
                f"Ended on {local_day(ticket.ended_at).isoformat()} (Copenhagen), "
                f"not on the file's day {day.isoformat()}",
            )
        )
    return problems


_ORDER = "issued_at <= called_at <= served_at <= ended_at"


def duplicate_problems(ticket_ids: Sequence[str]) -> list[tuple[int, int]]:
    """``(index, index of its first appearance)`` for every ticket id seen before."""
    first: dict[str, int] = {}
    duplicates = []
    for index, ticket_id in enumerate(ticket_ids):
        if ticket_id in first:
            duplicates.append((index, first[ticket_id]))
        else:
            first[ticket_id] = index
    return duplicates
